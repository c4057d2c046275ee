/* A market-data publisher in C++ (through ringcast.hpp): quotes for a few instruments,
 * written in place into loaned slots of a Block topic.
 *
 *   c++ -std=c++17 -O2 -I ffi/include ffi/examples/md_publisher.cpp \
 *       -L target/release -lringcast_ffi -Wl,-rpath,$PWD/target/release -o md_publisher
 *   ./md_publisher [TOPIC] [COUNT] [PREFIX]
 *
 * Waits for one subscriber, publishes COUNT quotes, then closes the topic. */
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "quote.h"
#include "ringcast.hpp"

int main(int argc, char** argv) {
  const char* topic = argc > 1 ? argv[1] : "quotes";
  unsigned long count = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1000;
  try {
    ringcast::PublisherConfig cfg;
    cfg.slots(1024).slot_size(sizeof(quote)).block();
    if (argc > 3) cfg.prefix(argv[3]);
    auto pub = ringcast::Publisher::create(topic, cfg);
    std::fprintf(stderr, "md_publisher: waiting for a subscriber on %s\n", topic);
    pub.wait_subscribers(1, std::chrono::seconds(30));
    for (unsigned long i = 0; i < count; i++) {
      ringcast::Loan loan = pub.loan();
      quote q{};
      q.seq = i;
      q.instrument = static_cast<uint32_t>(i % 4);
      q.bid_ticks = 10000 + static_cast<int64_t>(i % 97);
      q.ask_ticks = q.bid_ticks + 1 + static_cast<int64_t>(i % 3);
      q.bid_size = 100 + static_cast<uint32_t>(i % 7);
      q.ask_size = 200 + static_cast<uint32_t>(i % 5);
      std::memcpy(loan.data(), &q, sizeof q);
      loan.commit(sizeof q);
    }
    std::fprintf(stderr, "md_publisher: published %lu quotes\n", count);
    return 0;
  } catch (const ringcast::Error& e) {
    std::fprintf(stderr, "md_publisher: %s\n", e.what());
    return 1;
  }
}
