/* A C subscriber that receives one message of a Block topic, keeps the sample (its slot
 * pinned), prints "HELD seq=N" and sleeps until killed:  holder PREFIX TOPIC */
#include <stdio.h>
#include <unistd.h>

#include "ringcast.h"

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  ringcast_subscriber_options o;
  ringcast_subscriber_options_init(&o);
  o.prefix = argv[1];
  o.start = RINGCAST_START_OLDEST;
  ringcast_subscriber *s = NULL;
  ringcast_status st = ringcast_subscriber_attach(argv[2], &o, 30000000000LL, &s);
  if (st != RINGCAST_OK) {
    fprintf(stderr, "holder: %s\n", ringcast_last_error());
    return 1;
  }
  ringcast_sample sample;
  if ((st = ringcast_subscriber_recv(s, 30000000000LL, &sample)) != RINGCAST_OK) {
    fprintf(stderr, "holder: recv: %s\n", ringcast_status_str(st));
    return 1;
  }
  printf("HELD seq=%llu\n", (unsigned long long)sample.seq);
  fflush(stdout);
  for (;;) pause();
}
