// C++ Subscriber::drain: stopping and exceptions leave every later message for the next
// receive (Block, in one process), and calls on the draining subscriber from inside f
// throw RINGCAST_ERR_REENTRANT while publishing elsewhere works.
//   drain_stop PREFIX TOPIC   (TOPIC and TOPIC-out are created and destroyed here)
// Prints "RESULT checks=N failed=F".
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "ringcast.hpp"

static int checks, failed;
#define CHECK(cond)                                                 \
  do {                                                              \
    checks++;                                                       \
    if (!(cond)) {                                                  \
      failed++;                                                     \
      std::fprintf(stderr, "line %d: %s is false\n", __LINE__, #cond); \
    }                                                               \
  } while (0)

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const std::string prefix = argv[1], topic = argv[2], out_topic = topic + "-out";
  auto pub = ringcast::Publisher::create(
      topic, ringcast::PublisherConfig().prefix(prefix).slots(8).slot_size(16).block());
  auto out = ringcast::Publisher::create(
      out_topic, ringcast::PublisherConfig().prefix(prefix).slots(8).slot_size(16).block());
  auto sub = ringcast::Subscriber::attach(topic, ringcast::SubscriberOptions().prefix(prefix));
  for (uint64_t i = 0; i < 6; i++) pub.send(&i, sizeof i);

  // An exception on seq 2: seqs 0..2 were handed over, 3.. stay.
  std::vector<uint64_t> seen;
  bool threw = false;
  try {
    sub.drain(100, [&](const ringcast_sample& s) {
      seen.push_back(s.seq);
      if (s.seq == 2) throw std::runtime_error("boom");
    });
  } catch (const std::runtime_error& e) {
    threw = std::string(e.what()) == "boom";
  }
  CHECK(threw);
  CHECK(seen.size() == 3 && seen.back() == 2);
  {
    auto s = sub.try_recv();
    CHECK(s && s.seq() == 3);
  }

  // Returning false stops after that message.
  seen.clear();
  std::size_t n = sub.drain(100, [&](const ringcast_sample& s) {
    seen.push_back(s.seq);
    return false;
  });
  CHECK(n == 1 && seen.size() == 1 && seen[0] == 4);

  // Inside f: the same subscriber refuses (REENTRANT), another publisher works.
  ringcast_status inner = RINGCAST_OK;
  uint64_t relayed = 0;
  n = sub.drain(100, [&](const ringcast_sample& s) {
    try {
      sub.try_recv();
    } catch (const ringcast::Error& e) {
      inner = e.status();
    }
    relayed = out.send(s.data, s.len) + 1;
  });
  CHECK(n == 1);
  CHECK(inner == RINGCAST_ERR_REENTRANT);
  CHECK(relayed == 1);
  // The subscriber is usable again after the drain.
  CHECK(!sub.try_recv());

  // A loan committed twice, or moved from, says so (not "publisher is NULL").
  auto loan = out.loan();
  CHECK(loan.commit(0) == 1);
  ringcast_status twice = RINGCAST_OK;
  try {
    loan.commit(0);
  } catch (const ringcast::Error& e) {
    twice = e.status();
  }
  CHECK(twice == RINGCAST_ERR_NOT_HELD);
  std::printf("RESULT checks=%d failed=%d\n", checks, failed);
  return failed == 0 ? 0 : 1;
}
