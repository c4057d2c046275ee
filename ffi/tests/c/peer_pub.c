/* A C publisher for the cross-language tests:
 *   peer_pub PREFIX TOPIC block|overwrite SLOTS SLOT_SIZE COUNT
 * Creates the topic, waits for one subscriber, publishes COUNT pattern messages
 * (alternately by send and by loan + commit), prints "RESULT sent=N" and closes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"
#include "ringcast.h"

static int fail(const char *what, ringcast_status s) {
  fprintf(stderr, "peer_pub: %s: %s (%s)\n", what, ringcast_status_str(s), ringcast_last_error());
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: peer_pub PREFIX TOPIC block|overwrite SLOTS SLOT_SIZE COUNT\n");
    return 2;
  }
  ringcast_publisher_config cfg;
  ringcast_status s = ringcast_publisher_config_init(&cfg);
  if (s != RINGCAST_OK) return fail("config_init", s);
  cfg.prefix = argv[1];
  cfg.overflow = strcmp(argv[3], "block") == 0 ? RINGCAST_OVERFLOW_BLOCK : RINGCAST_OVERFLOW_OVERWRITE;
  cfg.slots = strtoull(argv[4], NULL, 10);
  cfg.slot_size = strtoull(argv[5], NULL, 10);
  uint64_t count = strtoull(argv[6], NULL, 10);
  size_t slot_size = (size_t)cfg.slot_size;

  ringcast_publisher *p = NULL;
  if ((s = ringcast_publisher_create(argv[2], &cfg, &p)) != RINGCAST_OK) return fail("create", s);
  if ((s = ringcast_publisher_wait_subscribers(p, 1, 30000000000LL)) != RINGCAST_OK)
    return fail("wait_subscribers", s);
  unsigned char *buf = malloc(slot_size + 1);
  if (buf == NULL) return 1;
  for (uint64_t seq = 0; seq < count; seq++) {
    size_t len = pattern_len(seq, slot_size);
    uint64_t got = 0;
    if (seq % 2 == 0) {
      pattern_fill(seq, buf, len);
      if ((s = ringcast_publisher_send(p, buf, len, &got)) != RINGCAST_OK) return fail("send", s);
    } else {
      ringcast_loan loan;
      if ((s = ringcast_publisher_loan(p, -1, &loan)) != RINGCAST_OK) return fail("loan", s);
      if (loan.capacity < slot_size || loan.seq != seq) return fail("loan geometry", s);
      pattern_fill(seq, loan.data, len);
      if ((s = ringcast_loan_commit(p, &loan, len, &got)) != RINGCAST_OK) return fail("commit", s);
    }
    if (got != seq) return fail("sequence", RINGCAST_OK);
  }
  free(buf);
  printf("RESULT sent=%llu\n", (unsigned long long)count);
  fflush(stdout);
  return ringcast_publisher_destroy(p) == RINGCAST_OK ? 0 : 1;
}
