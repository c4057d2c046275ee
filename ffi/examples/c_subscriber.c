/* A C subscriber: reads quotes in place (zero copy under Block) until the publisher is
 * gone, keeps a best bid/ask per instrument, and prints a summary.
 *
 *   cc -std=c99 -O2 -I ffi/include ffi/examples/c_subscriber.c \
 *      -L target/release -lringcast_ffi -Wl,-rpath,$PWD/target/release -o c_subscriber
 *   ./c_subscriber [TOPIC] [PREFIX]
 */
#include <stdio.h>
#include <string.h>

#include "quote.h"
#include "ringcast.h"

int main(int argc, char **argv) {
  const char *topic = argc > 1 ? argv[1] : "quotes";
  ringcast_subscriber_options opts;
  ringcast_subscriber_options_init(&opts);
  opts.start = RINGCAST_START_OLDEST;
  if (argc > 2) opts.prefix = argv[2];

  ringcast_subscriber *sub = NULL;
  /* Wait up to 30 s for the publisher to create the topic. */
  ringcast_status s = ringcast_subscriber_attach(topic, &opts, 30000000000LL, &sub);
  if (s != RINGCAST_OK) {
    fprintf(stderr, "c_subscriber: %s\n", ringcast_last_error());
    return 1;
  }
  unsigned long received = 0, lost = 0, out_of_order = 0;
  uint64_t next = 0;
  int64_t best_bid[4] = {0}, best_ask[4] = {0};
  for (;;) {
    ringcast_sample sample;
    s = ringcast_subscriber_recv(sub, 5000000000LL, &sample);
    if (s == RINGCAST_DISCONNECTED) break;
    if (s != RINGCAST_OK) {
      fprintf(stderr, "c_subscriber: %s\n", ringcast_status_str(s));
      ringcast_subscriber_destroy(sub);
      return 1;
    }
    quote q;
    if (sample.len == sizeof q) {
      memcpy(&q, sample.data, sizeof q); /* the slot itself, in shared memory */
      if (q.seq != next + sample.lost) out_of_order++;
      next = q.seq + 1;
      if (q.instrument < 4) {
        best_bid[q.instrument] = q.bid_ticks;
        best_ask[q.instrument] = q.ask_ticks;
      }
    }
    lost += sample.lost;
    received++;
    ringcast_sample_release(sub, &sample); /* frees the slot for the publisher */
  }
  for (int i = 0; i < 4; i++)
    printf("instrument %d: bid %lld ask %lld\n", i, (long long)best_bid[i], (long long)best_ask[i]);
  printf("RESULT received=%lu lost=%lu out_of_order=%lu\n", received, lost, out_of_order);
  ringcast_subscriber_destroy(sub);
  return out_of_order == 0 ? 0 : 1;
}
