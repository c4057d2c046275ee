/* A C publisher of a topic with several publishers, for the lane tests:
 *   lanes_pub PREFIX TOPIC block|overwrite SLOTS SLOT_SIZE MAX_PUBLISHERS COUNT HANDLES [gate]
 * Creates or joins the topic with HANDLES publisher handles (the second and later join;
 * so may the first, if the topic exists), printing "JOINED lane=L writer=W" for each,
 * then "READY". With "gate", then waits for a line on standard input (so a test can
 * have every process join before any publishes and leaves: a lane left early could be
 * taken over by a later joiner, which continues its sequence). Waits for one subscriber,
 * publishes COUNT pattern messages (pattern.h,
 * by each message's sequence in its lane) from every handle, round robin, alternately by
 * loan + commit and by send, then prints "RESULT sent=N" (N = COUNT per handle) and
 * leaves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"
#include "ringcast.h"

#define MAX_HANDLES 8

static int fail(const char *what, ringcast_status s) {
  fprintf(stderr, "lanes_pub: %s: %s (%s)\n", what, ringcast_status_str(s), ringcast_last_error());
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 9 && !(argc == 10 && strcmp(argv[9], "gate") == 0)) {
    fprintf(stderr,
            "usage: lanes_pub PREFIX TOPIC block|overwrite SLOTS SLOT_SIZE MAX_PUBLISHERS COUNT HANDLES [gate]\n");
    return 2;
  }
  ringcast_publisher_config cfg;
  ringcast_status s = ringcast_publisher_config_init(&cfg);
  if (s != RINGCAST_OK) return fail("config_init", s);
  cfg.prefix = argv[1];
  cfg.overflow = strcmp(argv[3], "block") == 0 ? RINGCAST_OVERFLOW_BLOCK : RINGCAST_OVERFLOW_OVERWRITE;
  cfg.slots = strtoull(argv[4], NULL, 10);
  cfg.slot_size = strtoull(argv[5], NULL, 10);
  cfg.max_publishers = strtoull(argv[6], NULL, 10);
  uint64_t count = strtoull(argv[7], NULL, 10);
  int handles = atoi(argv[8]);
  if (handles < 1 || handles > MAX_HANDLES) return 2;
  size_t slot_size = (size_t)cfg.slot_size;

  ringcast_publisher *p[MAX_HANDLES] = {NULL};
  uint64_t next[MAX_HANDLES] = {0};
  for (int h = 0; h < handles; h++) {
    uint32_t lane = 0, writer = 0;
    if ((s = ringcast_publisher_create(argv[2], &cfg, &p[h])) != RINGCAST_OK) return fail("create", s);
    if ((s = ringcast_publisher_lane(p[h], &lane)) != RINGCAST_OK) return fail("lane", s);
    if ((s = ringcast_publisher_writer(p[h], &writer)) != RINGCAST_OK) return fail("writer", s);
    printf("JOINED lane=%u writer=%u\n", lane, writer);
  }
  printf("READY\n");
  fflush(stdout);
  if (argc == 10) {
    char line[16];
    if (fgets(line, sizeof line, stdin) == NULL) return fail("gate", RINGCAST_OK);
  }
  if ((s = ringcast_publisher_wait_subscribers(p[0], 1, 30000000000LL)) != RINGCAST_OK)
    return fail("wait_subscribers", s);
  unsigned char *buf = malloc(slot_size + 1);
  if (buf == NULL) return 1;
  for (uint64_t i = 0; i < count; i++) {
    for (int h = 0; h < handles; h++) {
      uint64_t got = 0;
      if (i % 2 == 0) {
        /* A loan says its sequence before the write: the lane's (a lane taken over from
         * a publisher that left continues its sequence). */
        ringcast_loan loan;
        if ((s = ringcast_publisher_loan(p[h], -1, &loan)) != RINGCAST_OK) return fail("loan", s);
        size_t len = pattern_len(loan.seq, slot_size);
        pattern_fill(loan.seq, loan.data, len);
        if ((s = ringcast_loan_commit(p[h], &loan, len, &got)) != RINGCAST_OK) return fail("commit", s);
        next[h] = got + 1;
      } else {
        size_t len = pattern_len(next[h], slot_size);
        pattern_fill(next[h], buf, len);
        if ((s = ringcast_publisher_send(p[h], buf, len, &got)) != RINGCAST_OK) return fail("send", s);
        if (got != next[h]) return fail("sequence", RINGCAST_OK);
      }
    }
  }
  free(buf);
  printf("RESULT sent=%llu\n", (unsigned long long)count);
  fflush(stdout);
  for (int h = 0; h < handles; h++)
    if (ringcast_publisher_destroy(p[h]) != RINGCAST_OK) return 1;
  return 0;
}
