// The C++ wait set on two topics (through ringcast.hpp):  waitset PREFIX TOPIC_A TOPIC_B
// Attaches to both (waiting for them), waits on both in one WaitSet, drains whichever is
// ready, checks each topic's order, until both publishers are gone. A thread rings the
// notifier once. Prints "RESULT a=N b=M notified=K bad=B".
#include <cstdio>
#include <thread>

#include "ringcast.hpp"

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  try {
    auto opts = [&] { return ringcast::SubscriberOptions().prefix(argv[1]).oldest(); };
    ringcast::Subscriber subs[2] = {
        ringcast::Subscriber::attach(argv[2], opts(), std::chrono::seconds(30)),
        ringcast::Subscriber::attach(argv[3], opts(), std::chrono::seconds(30)),
    };
    ringcast::WaitSet set;
    set.add(subs[0]);
    set.add(subs[1]);
    ringcast::Notifier bell = set.notifier();
    std::thread ringer([&bell] { bell.notify(); });
    std::printf("ATTACHED\n");
    std::fflush(stdout);
    uint64_t got[2] = {0, 0}, notified = 0, bad = 0;
    bool open[2] = {true, true};
    while (open[0] || open[1]) {
      ringcast_status s = set.wait(std::chrono::seconds(30));
      if (s == RINGCAST_TIMEOUT) {
        std::fprintf(stderr, "waitset: stuck at %llu %llu\n", (unsigned long long)got[0],
                     (unsigned long long)got[1]);
        return 1;
      }
      if (s == RINGCAST_NOTIFIED) notified++;
      for (int i = 0; i < 2; i++) {
        if (!open[i] || !set.is_ready(subs[i])) continue;
        for (;;) {
          ringcast::Sample m = subs[i].try_recv();
          if (!m) {
            if (m.status() == RINGCAST_DISCONNECTED) {
              open[i] = false;
              set.remove(subs[i]);
            }
            break;
          }
          if (m.seq() != got[i]) bad++;
          got[i]++;
        }
      }
    }
    ringer.join();
    std::printf("RESULT a=%llu b=%llu notified=%llu bad=%llu\n", (unsigned long long)got[0],
                (unsigned long long)got[1], (unsigned long long)notified,
                (unsigned long long)bad);
    return 0;
  } catch (const ringcast::Error& e) {
    std::fprintf(stderr, "waitset: %s\n", e.what());
    return 1;
  }
}
