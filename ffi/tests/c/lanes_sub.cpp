// A C++ subscriber of a topic with several publishers (through ringcast.hpp):
//   lanes_sub PREFIX TOPIC SLOT_SIZE
// Attaches (waiting for the topic, from the oldest message), prints "ATTACHED", receives
// until every publisher is gone, with recv and drain, and checks per publisher (lane,
// writer): its messages come in its lane's order (seq == the lane's previous + 1 + lost,
// from 0: the lanes are fresh), payloads match pattern.h, and its lane's losses add up
// to lost_in(lane). Prints "PUB lane=L writer=W received=N lost=M" per publisher, then
// "RESULT publishers=K received=N lost=L bad=B".
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <utility>

#include "pattern.h"
#include "ringcast.hpp"

namespace {
struct Books {
  uint64_t received = 0, lost = 0;
};
}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: lanes_sub PREFIX TOPIC SLOT_SIZE\n";
    return 2;
  }
  try {
    std::size_t slot_size = std::strtoull(argv[3], nullptr, 10);
    auto sub = ringcast::Subscriber::attach(
        argv[2], ringcast::SubscriberOptions().prefix(argv[1]).oldest(),
        std::chrono::seconds(30));
    std::printf("ATTACHED\n");
    std::fflush(stdout);
    std::map<std::pair<uint32_t, uint32_t>, Books> publishers;
    std::map<uint32_t, uint64_t> lane_next, lane_lost;
    uint64_t received = 0, lost = 0, bad = 0;
    auto check = [&](uint32_t lane, uint32_t writer, uint64_t seq, uint64_t lost_before,
                     const void* data, std::size_t len) {
      uint64_t& next = lane_next[lane];  // 0 for a lane not seen yet
      if (seq != next + lost_before) bad++;
      if (!pattern_check(seq, static_cast<const unsigned char*>(data), len, slot_size)) bad++;
      next = seq + 1;
      Books& b = publishers[{lane, writer}];
      b.received++;
      b.lost += lost_before;
      lane_lost[lane] += lost_before;
      lost += lost_before;
      received++;
    };
    for (;;) {
      {
        ringcast::Sample s = sub.recv(std::chrono::seconds(30));
        if (!s) {
          if (s.status() == RINGCAST_DISCONNECTED) break;
          std::cerr << "lanes_sub: " << ringcast_status_str(s.status()) << "\n";
          return 1;
        }
        check(s.lane(), s.writer(), s.seq(), s.lost(), s.data(), s.size());
      }
      ringcast_status stopped = RINGCAST_OK;
      sub.drain(
          SIZE_MAX,
          [&](const ringcast_sample& c) {
            check(c.lane, c.writer, c.seq, c.lost, c.data, c.len);
          },
          &stopped);
      if (stopped == RINGCAST_DISCONNECTED) break;
      if (stopped != RINGCAST_OK) {
        std::cerr << "lanes_sub: drain: " << ringcast_status_str(stopped) << "\n";
        return 1;
      }
    }
    for (const auto& [lane, n] : lane_lost)
      if (sub.lost_in(lane) != n) bad++;
    if (lost != sub.lost()) bad++;
    for (const auto& [id, b] : publishers)
      std::printf("PUB lane=%u writer=%u received=%llu lost=%llu\n", id.first, id.second,
                  (unsigned long long)b.received, (unsigned long long)b.lost);
    std::printf("RESULT publishers=%zu received=%llu lost=%llu bad=%llu\n", publishers.size(),
                (unsigned long long)received, (unsigned long long)lost,
                (unsigned long long)bad);
    return 0;
  } catch (const ringcast::Error& e) {
    std::cerr << "lanes_sub: " << e.what() << " (status " << e.status() << ")\n";
    return 1;
  }
}
