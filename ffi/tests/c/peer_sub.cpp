// A C++ subscriber for the cross-language tests (through ringcast.hpp):
//   peer_sub PREFIX TOPIC SLOT_SIZE [go]
// Attaches (waiting for the topic, from the oldest message), prints "ATTACHED"; with
// "go", waits for a line on stdin before receiving. Receives until the publisher is
// gone, checking order (seq == previous + 1 + lost) and payloads, then prints
// "RESULT received=N lost=L bad=B".
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "pattern.h"
#include "ringcast.hpp"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: peer_sub PREFIX TOPIC SLOT_SIZE [go]\n";
    return 2;
  }
  try {
    std::size_t slot_size = std::strtoull(argv[3], nullptr, 10);
    auto sub = ringcast::Subscriber::attach(
        argv[2], ringcast::SubscriberOptions().prefix(argv[1]).oldest(),
        std::chrono::seconds(30));
    std::printf("ATTACHED\n");
    std::fflush(stdout);
    if (argc > 4 && std::string(argv[4]) == "go") {
      std::string line;
      std::getline(std::cin, line);
    }
    uint64_t received = 0, lost = 0, bad = 0, next = 0;
    auto check = [&](uint64_t seq, uint64_t lost_before, const void* data, std::size_t len) {
      lost += lost_before;
      if (seq != next + lost_before) bad++;
      if (!pattern_check(seq, static_cast<const unsigned char*>(data), len, slot_size)) bad++;
      next = seq + 1;
      received++;
    };
    // Wait for one message with recv, then take whatever else is ready with drain: both
    // paths, in order, under both policies (drain folds laps into `lost` as recv does).
    for (;;) {
      {
        ringcast::Sample s = sub.recv(std::chrono::seconds(30));
        if (!s) {
          if (s.status() == RINGCAST_DISCONNECTED) break;
          std::cerr << "peer_sub: " << ringcast_status_str(s.status()) << "\n";
          return 1;
        }
        check(s.seq(), s.lost(), s.data(), s.size());
      }
      ringcast_status stopped = RINGCAST_OK;
      sub.drain(
          SIZE_MAX, [&](const ringcast_sample& c) { check(c.seq, c.lost, c.data, c.len); },
          &stopped);
      if (stopped == RINGCAST_DISCONNECTED) break;
      if (stopped != RINGCAST_OK) {
        std::cerr << "peer_sub: drain: " << ringcast_status_str(stopped) << "\n";
        return 1;
      }
    }
    if (lost != sub.lost()) bad++;
    std::printf("RESULT received=%llu lost=%llu bad=%llu\n", (unsigned long long)received,
                (unsigned long long)lost, (unsigned long long)bad);
    return 0;
  } catch (const ringcast::Error& e) {
    std::cerr << "peer_sub: " << e.what() << " (status " << e.status() << ")\n";
    return 1;
  }
}
