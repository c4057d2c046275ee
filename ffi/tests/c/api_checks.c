/* Every entry point with bad arguments: a status code, never a crash. Built with
 * -fsanitize=address,undefined where the compiler has them.
 *   api_checks PREFIX TOPIC   (TOPIC is created and destroyed here)
 * Prints "RESULT checks=N failed=F". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ringcast.h"

static uint64_t drained[16];
static int drained_n;
static uint32_t last_lane, last_writer;

static int on_drained(const ringcast_sample *sample, void *ctx) {
  (void)ctx;
  if (drained_n < 16) drained[drained_n] = sample->seq;
  drained_n++;
  last_lane = sample->lane;
  last_writer = sample->writer;
  return 0;
}

/* Stops the drain after `*(int *)ctx` more messages. */
static int stop_after(const ringcast_sample *sample, void *ctx) {
  int *left = ctx;
  on_drained(sample, NULL);
  return --*left <= 0;
}

/* What a drain callback tries on its own subscriber, its wait set and elsewhere. */
struct inside {
  ringcast_subscriber *s, *other;
  ringcast_waitset *ws;
  ringcast_publisher *elsewhere;
  ringcast_status st[9];
  int calls;
};

static int reenter(const ringcast_sample *sample, void *ctx) {
  struct inside *in = ctx;
  ringcast_sample tmp = *sample;
  ringcast_subscriber *ready[2];
  size_t c = 0, nready = 0;
  uint64_t lost = 0;
  in->calls++;
  in->st[0] = ringcast_subscriber_recv(in->s, 0, &tmp);
  in->st[1] = ringcast_subscriber_drain(in->s, 8, on_drained, NULL, &c);
  in->st[2] = ringcast_subscriber_destroy(in->s);
  in->st[3] = ringcast_subscriber_lost(in->s, &lost);
  in->st[4] = ringcast_sample_release(in->s, &tmp);
  in->st[5] = ringcast_waitset_wait(in->ws, 0, ready, 2, &nready);
  in->st[6] = ringcast_waitset_remove(in->ws, in->s);
  in->st[7] = ringcast_subscriber_recv(in->other, 0, &tmp); /* through the same set */
  in->st[8] = ringcast_waitset_destroy(in->ws);
  return ringcast_publisher_send(in->elsewhere, "relay", 5, NULL) != RINGCAST_OK;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  const char *prefix = argv[1], *topic = argv[2];
  ringcast_publisher_config cfg;
  ringcast_subscriber_options opts;
  ringcast_publisher *p = NULL;
  ringcast_subscriber *s = NULL, *s2 = NULL;
  ringcast_waitset *ws = NULL;
  ringcast_notifier *n = NULL;
  ringcast_loan loan;
  ringcast_sample sample;
  uint64_t seq = 0, lost = 0;
  size_t count = 0;
  unsigned char big[5000];
  memset(big, 7, sizeof big);

  /* Strings. */
  EXPECT_TRUE(strcmp(ringcast_status_str(RINGCAST_OK), "ok") == 0);
  EXPECT_TRUE(strcmp(ringcast_status_str(12345), "unknown status") == 0);
  EXPECT_TRUE(strlen(ringcast_version()) > 0);

  /* Config structs: NULL, and wrong versions. */
  EXPECT(ringcast_publisher_config_init(NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_subscriber_options_init(NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_publisher_config_init(&cfg), RINGCAST_OK);
  EXPECT(ringcast_subscriber_options_init(&opts), RINGCAST_OK);
  cfg.prefix = prefix;
  opts.prefix = prefix;
  cfg.struct_size = 8;
  EXPECT(ringcast_publisher_create(topic, &cfg, &p), RINGCAST_ERR_VERSION);
  EXPECT_TRUE(p == NULL && strstr(ringcast_last_error(), "struct_size") != NULL);
  cfg.struct_size = sizeof cfg + 8;
  EXPECT(ringcast_publisher_create(topic, &cfg, &p), RINGCAST_ERR_VERSION);
  cfg.struct_size = sizeof cfg;
  opts.struct_size = 0;
  EXPECT(ringcast_subscriber_attach(topic, &opts, 0, &s), RINGCAST_ERR_VERSION);
  opts.struct_size = sizeof opts;
  /* Structs of an earlier header (before `memory` and `release_batch`) are still read. */
  {
    struct {
      uint32_t struct_size, overflow;
      uint64_t slots, slot_size, max_subscribers, stall_timeout_ns;
      uint32_t mode, wait;
      const char *prefix;
    } old_cfg;
    struct {
      uint32_t struct_size, start, wait, reserved;
      uint64_t max_slot_size;
      const char *prefix;
    } old_opts;
    EXPECT_TRUE(sizeof old_cfg == 56 && sizeof old_opts == 32);
    memcpy(&old_cfg, &cfg, sizeof old_cfg);
    old_cfg.struct_size = sizeof old_cfg;
    memcpy(&old_opts, &opts, sizeof old_opts);
    old_opts.struct_size = sizeof old_opts;
    old_opts.reserved = 0;
    EXPECT(ringcast_publisher_create(topic, (const ringcast_publisher_config *)(void *)&old_cfg, &p),
           RINGCAST_OK);
    EXPECT(ringcast_subscriber_attach(topic, (const ringcast_subscriber_options *)(void *)&old_opts,
                                      0, &s),
           RINGCAST_OK);
    EXPECT(ringcast_subscriber_destroy(s), RINGCAST_OK);
    EXPECT(ringcast_publisher_destroy(p), RINGCAST_OK);
    s = NULL;
    p = NULL;
  }
  cfg.overflow = 7;
  EXPECT(ringcast_publisher_create(topic, &cfg, &p), RINGCAST_ERR_INVALID_ARGUMENT);
  cfg.overflow = RINGCAST_OVERFLOW_BLOCK;
  cfg.wait = 9;
  EXPECT(ringcast_publisher_create(topic, &cfg, &p), RINGCAST_ERR_INVALID_ARGUMENT);
  cfg.wait = RINGCAST_WAIT_PARK;
  opts.start = 3;
  EXPECT(ringcast_subscriber_attach(topic, &opts, 0, &s), RINGCAST_ERR_INVALID_ARGUMENT);
  opts.start = RINGCAST_START_OLDEST;
  cfg.slots = 3;
  EXPECT(ringcast_publisher_create(topic, &cfg, &p), RINGCAST_ERR_CONFIG);
  cfg.slots = 4;
  cfg.slot_size = 0;
  EXPECT(ringcast_publisher_create(topic, &cfg, &p), RINGCAST_ERR_CONFIG);
  cfg.slot_size = 4096;
  cfg.stall_timeout_ns = 1; /* below 1 ms */
  EXPECT(ringcast_publisher_create(topic, &cfg, &p), RINGCAST_ERR_CONFIG);
  cfg.stall_timeout_ns = 0;
  cfg.memory = 8; /* no such flag */
  EXPECT(ringcast_publisher_create(topic, &cfg, &p), RINGCAST_ERR_INVALID_ARGUMENT);
  cfg.memory = RINGCAST_MEMORY_PREFAULT | RINGCAST_MEMORY_LOCK;
  opts.memory = RINGCAST_MEMORY_HUGE_PAGES; /* publishers only */
  EXPECT(ringcast_subscriber_attach(topic, &opts, 0, &s), RINGCAST_ERR_INVALID_ARGUMENT);
  opts.memory = RINGCAST_MEMORY_PREFAULT | RINGCAST_MEMORY_LOCK;
  opts.release_batch = 1; /* this program reads and publishes one topic in one thread */

  /* Create: NULLs, bad names, bad UTF-8, then for real, then a second publisher. */
  EXPECT(ringcast_publisher_create(NULL, &cfg, &p), RINGCAST_ERR_NULL);
  EXPECT(ringcast_publisher_create(topic, &cfg, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_publisher_create("", &cfg, &p), RINGCAST_ERR_NAME);
  EXPECT(ringcast_publisher_create("a/b", &cfg, &p), RINGCAST_ERR_NAME);
  EXPECT(ringcast_publisher_create("bad\xff", &cfg, &p), RINGCAST_ERR_INVALID_ARGUMENT);
  cfg.prefix = "bad prefix/";
  EXPECT(ringcast_publisher_create(topic, &cfg, &p), RINGCAST_ERR_NAME);
  cfg.prefix = prefix;
  EXPECT(ringcast_publisher_create(topic, &cfg, &p), RINGCAST_OK);
  ringcast_publisher *p2 = NULL;
  EXPECT(ringcast_publisher_create(topic, &cfg, &p2), RINGCAST_ERR_EXISTS);
  EXPECT_TRUE(p2 == NULL);

  /* Attach: NULLs, missing topic (no wait, short wait), then for real. */
  EXPECT(ringcast_subscriber_attach(NULL, &opts, 0, &s), RINGCAST_ERR_NULL);
  EXPECT(ringcast_subscriber_attach(topic, &opts, 0, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_subscriber_attach("no-such-topic", &opts, 0, &s), RINGCAST_ERR_NOT_FOUND);
  EXPECT(ringcast_subscriber_attach("no-such-topic", &opts, 20000000, &s), RINGCAST_ERR_NOT_FOUND);
  EXPECT(ringcast_subscriber_attach(topic, &opts, 0, &s), RINGCAST_OK);
  EXPECT(ringcast_subscriber_attach(topic, &opts, 0, &s2), RINGCAST_OK);

  /* Send: NULLs, oversize, zero length. */
  EXPECT(ringcast_publisher_send(NULL, big, 1, &seq), RINGCAST_ERR_NULL);
  EXPECT(ringcast_publisher_send(p, NULL, 1, &seq), RINGCAST_ERR_NULL);
  EXPECT(ringcast_publisher_send(p, big, 4097, &seq), RINGCAST_ERR_TOO_LARGE);
  EXPECT(ringcast_publisher_send(p, NULL, 0, &seq), RINGCAST_OK);
  EXPECT_TRUE(seq == 0);
  EXPECT(ringcast_publisher_send(p, big, 4096, NULL), RINGCAST_OK);

  /* Loans: NULLs, one at a time, oversize commit, commit twice, abort, destroy with one. */
  EXPECT(ringcast_publisher_loan(NULL, 0, &loan), RINGCAST_ERR_NULL);
  EXPECT(ringcast_publisher_loan(p, 0, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_publisher_loan(p, 0, &loan), RINGCAST_OK);
  EXPECT_TRUE(loan.capacity == 4096 && loan.seq == 2 && loan.data != NULL);
  ringcast_loan other;
  EXPECT(ringcast_publisher_loan(p, 0, &other), RINGCAST_ERR_LOAN_OUTSTANDING);
  EXPECT(ringcast_publisher_send(p, big, 1, &seq), RINGCAST_ERR_LOAN_OUTSTANDING);
  EXPECT(ringcast_publisher_subscriber_count(p, &count), RINGCAST_ERR_LOAN_OUTSTANDING);
  EXPECT(ringcast_loan_commit(p, NULL, 1, &seq), RINGCAST_ERR_NULL);
  EXPECT(ringcast_loan_commit(NULL, &loan, 1, &seq), RINGCAST_ERR_NULL);
  EXPECT(ringcast_loan_commit(p, &loan, 4097, &seq), RINGCAST_ERR_TOO_LARGE);
  ringcast_loan forged = loan;
  forged.seq += 1;
  EXPECT(ringcast_loan_commit(p, &forged, 1, &seq), RINGCAST_ERR_NOT_HELD);
  memcpy(loan.data, "abc", 3);
  ringcast_loan copy = loan;
  EXPECT(ringcast_loan_commit(p, &loan, 3, &seq), RINGCAST_OK);
  EXPECT_TRUE(seq == 2 && loan.data == NULL);
  EXPECT(ringcast_loan_commit(p, &copy, 3, &seq), RINGCAST_ERR_NOT_HELD);
  EXPECT(ringcast_loan_abort(p, &copy), RINGCAST_ERR_NOT_HELD);
  EXPECT(ringcast_publisher_loan(p, 1000000, &loan), RINGCAST_OK);
  EXPECT(ringcast_loan_abort(p, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_loan_abort(p, &loan), RINGCAST_OK);
  EXPECT(ringcast_publisher_subscriber_count(p, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_publisher_subscriber_count(p, &count), RINGCAST_OK);
  EXPECT_TRUE(count == 2);
  EXPECT(ringcast_publisher_slot_size(p, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_publisher_slot_size(NULL, &count), RINGCAST_ERR_NULL);
  EXPECT(ringcast_publisher_slot_size(p, &count), RINGCAST_OK);
  EXPECT_TRUE(count == 4096);
  EXPECT(ringcast_publisher_subscriber_count(NULL, &count), RINGCAST_ERR_NULL);
  EXPECT(ringcast_loan_abort(NULL, &loan), RINGCAST_ERR_NULL);
  EXPECT(ringcast_loan_commit(p, &loan, 0, NULL), RINGCAST_ERR_NOT_HELD); /* none outstanding */
  EXPECT(ringcast_publisher_wait_subscribers(p, 3, 1000000), RINGCAST_TIMEOUT);
  EXPECT(ringcast_publisher_wait_subscribers(NULL, 1, 0), RINGCAST_ERR_NULL);

  /* Receive: NULLs, one sample at a time, release twice, a forged sample. */
  EXPECT(ringcast_subscriber_recv(NULL, 0, &sample), RINGCAST_ERR_NULL);
  EXPECT(ringcast_subscriber_recv(s, 0, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_subscriber_recv(s, 0, &sample), RINGCAST_OK);
  EXPECT_TRUE(sample.seq == 0 && sample.len == 0 && sample.lost == 0);
  ringcast_sample held;
  EXPECT(ringcast_subscriber_recv(s, 0, &held), RINGCAST_ERR_SAMPLE_OUTSTANDING);
  EXPECT(ringcast_subscriber_lost(s, &lost), RINGCAST_OK); /* allowed while a sample is held */
  ringcast_sample fake = sample;
  fake.seq = 99;
  EXPECT(ringcast_sample_release(s, &fake), RINGCAST_ERR_NOT_HELD);
  EXPECT(ringcast_sample_release(s, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_sample_release(NULL, &sample), RINGCAST_ERR_NULL);
  ringcast_sample again = sample;
  EXPECT(ringcast_sample_release(s, &sample), RINGCAST_OK);
  EXPECT(ringcast_sample_release(s, &again), RINGCAST_ERR_NOT_HELD);
  EXPECT(ringcast_subscriber_recv(s, -1, &sample), RINGCAST_OK);
  EXPECT_TRUE(sample.seq == 1 && sample.len == 4096 && ((const unsigned char *)sample.data)[4095] == 7);
  EXPECT(ringcast_sample_release(s, &sample), RINGCAST_OK);
  EXPECT(ringcast_subscriber_recv(s, 1000000, &sample), RINGCAST_OK);
  EXPECT_TRUE(sample.seq == 2 && sample.len == 3 && memcmp(sample.data, "abc", 3) == 0);
  EXPECT(ringcast_sample_release(s, &sample), RINGCAST_OK);
  EXPECT(ringcast_subscriber_recv(s, 0, &sample), RINGCAST_TIMEOUT);
  EXPECT(ringcast_subscriber_recv(s, 2000000, &sample), RINGCAST_TIMEOUT);
  EXPECT(ringcast_subscriber_lost(s, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_subscriber_lost(NULL, &lost), RINGCAST_ERR_NULL);
  /* An outcome leaves the thread's last error as it was. */
  EXPECT(ringcast_subscriber_lost(NULL, &lost), RINGCAST_ERR_NULL);
  char before[256];
  snprintf(before, sizeof before, "%s", ringcast_last_error());
  EXPECT(ringcast_subscriber_recv(s, 0, &sample), RINGCAST_TIMEOUT);
  EXPECT_TRUE(strcmp(before, ringcast_last_error()) == 0 && strlen(before) > 0);
  EXPECT(ringcast_subscriber_lost(s, &lost), RINGCAST_OK);
  EXPECT_TRUE(lost == 0);

  /* Wait sets: NULLs, add twice, a sample held, empty, notifier, remove, destroy order. */
  EXPECT(ringcast_waitset_create(0, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_waitset_remove(NULL, s), RINGCAST_ERR_NULL);
  EXPECT(ringcast_waitset_wait(NULL, 0, NULL, 0, &count), RINGCAST_ERR_NULL);
  n = (ringcast_notifier *)&count; /* garbage the call must clear */
  EXPECT(ringcast_waitset_notifier(NULL, &n), RINGCAST_ERR_NULL);
  EXPECT_TRUE(n == NULL);
  EXPECT(ringcast_notifier_destroy(NULL), RINGCAST_OK);
  EXPECT(ringcast_waitset_create(1, &ws), RINGCAST_OK);
  size_t nready = 0;
  ringcast_subscriber *ready[2];
  EXPECT(ringcast_waitset_wait(ws, -1, ready, 2, &nready), RINGCAST_ERR_WAITSET);
  EXPECT(ringcast_waitset_add(NULL, s), RINGCAST_ERR_NULL);
  EXPECT(ringcast_waitset_add(ws, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_waitset_add(ws, s), RINGCAST_OK);
  EXPECT(ringcast_waitset_add(ws, s), RINGCAST_ERR_WAITSET);
  EXPECT(ringcast_waitset_add(ws, s2), RINGCAST_ERR_RESOURCE);
  EXPECT(ringcast_waitset_remove(ws, s2), RINGCAST_ERR_WAITSET);
  EXPECT(ringcast_waitset_wait(ws, 1000000, ready, 2, &nready), RINGCAST_TIMEOUT);
  EXPECT_TRUE(nready == 0);
  EXPECT(ringcast_waitset_wait(ws, 0, NULL, 2, &nready), RINGCAST_ERR_NULL);
  EXPECT(ringcast_waitset_wait(ws, 0, ready, 2, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_waitset_remove(ws, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_publisher_send(p, big, 5, &seq), RINGCAST_OK);
  /* s2 has read nothing: the 4-slot Block ring is full. */
  EXPECT(ringcast_publisher_loan(p, 0, &loan), RINGCAST_FULL);
  EXPECT_TRUE(loan.data == NULL && loan.capacity == 0);
  EXPECT(ringcast_publisher_loan(p, 1000000, &loan), RINGCAST_TIMEOUT);
  EXPECT(ringcast_publisher_send(p, big, 4097, &seq), RINGCAST_ERR_TOO_LARGE);
  EXPECT(ringcast_waitset_wait(ws, -1, ready, 2, &nready), RINGCAST_OK);
  EXPECT_TRUE(nready == 1 && ready[0] == s);
  EXPECT(ringcast_subscriber_recv(s, 0, &sample), RINGCAST_OK); /* through the set */
  EXPECT_TRUE(sample.seq == 3 && sample.len == 5);
  EXPECT(ringcast_waitset_wait(ws, 0, ready, 2, &nready), RINGCAST_ERR_SAMPLE_OUTSTANDING);
  EXPECT(ringcast_sample_release(s, &sample), RINGCAST_OK);
  EXPECT(ringcast_waitset_notifier(ws, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_waitset_notifier(ws, &n), RINGCAST_OK);
  EXPECT(ringcast_notifier_notify(NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_notifier_notify(n), RINGCAST_OK);
  EXPECT(ringcast_waitset_wait(ws, -1, ready, 2, &nready), RINGCAST_NOTIFIED);
  EXPECT_TRUE(nready == 0);
  EXPECT(ringcast_waitset_remove(ws, s), RINGCAST_OK);
  EXPECT(ringcast_waitset_remove(ws, s), RINGCAST_ERR_WAITSET);
  EXPECT(ringcast_waitset_add(ws, s), RINGCAST_OK);
  EXPECT(ringcast_waitset_destroy(ws), RINGCAST_OK); /* s gets its state back */
  EXPECT(ringcast_subscriber_recv(s, 0, &sample), RINGCAST_TIMEOUT);
  EXPECT(ringcast_notifier_notify(n), RINGCAST_OK); /* outlives its set */
  EXPECT(ringcast_notifier_destroy(n), RINGCAST_OK);
  /* A timed wait on an empty set; then two ready members through a one-entry array:
   * round robin, so the second wait reports the other one. */
  EXPECT(ringcast_waitset_create(0, &ws), RINGCAST_OK);
  EXPECT(ringcast_waitset_wait(ws, 2000000, ready, 2, &nready), RINGCAST_TIMEOUT);
  EXPECT(ringcast_waitset_add(ws, s2), RINGCAST_OK); /* s2: seq 0..3 unread */
  EXPECT(ringcast_waitset_add(ws, s), RINGCAST_OK);
  EXPECT(ringcast_subscriber_recv(s2, 0, &sample), RINGCAST_OK);
  EXPECT_TRUE(sample.seq == 0);
  EXPECT(ringcast_sample_release(s2, &sample), RINGCAST_OK);
  EXPECT(ringcast_publisher_send(p, big, 1, &seq), RINGCAST_OK); /* seq 4: s is ready too */
  EXPECT(ringcast_waitset_wait(ws, -1, ready, 1, &nready), RINGCAST_OK);
  EXPECT_TRUE(nready == 1);
  ringcast_subscriber *first = ready[0];
  EXPECT(ringcast_waitset_wait(ws, -1, ready, 1, &nready), RINGCAST_OK);
  EXPECT_TRUE(nready == 1 && ready[0] != first);
  EXPECT(ringcast_waitset_wait(ws, -1, NULL, 0, &nready), RINGCAST_OK);
  EXPECT_TRUE(nready == 0);
  /* A member destroyed holding a sample: released, and it leaves the set. */
  EXPECT(ringcast_subscriber_recv(s2, 0, &sample), RINGCAST_OK);
  EXPECT(ringcast_subscriber_destroy(s2), RINGCAST_ABANDONED);
  EXPECT(ringcast_waitset_wait(ws, 0, ready, 2, &nready), RINGCAST_OK);
  EXPECT_TRUE(nready == 1 && ready[0] == s);
  /* The set destroyed while a member holds a sample: released through the handle. */
  EXPECT(ringcast_subscriber_recv(s, 0, &sample), RINGCAST_OK);
  EXPECT_TRUE(sample.seq == 4);
  EXPECT(ringcast_waitset_destroy(ws), RINGCAST_OK);
  EXPECT(ringcast_sample_release(s, &sample), RINGCAST_OK);
  EXPECT(ringcast_waitset_destroy(NULL), RINGCAST_OK);

  /* Drain: NULLs, a held sample, then three messages in runs of at most two. */
  drained_n = 0;
  EXPECT(ringcast_subscriber_drain(NULL, 8, on_drained, NULL, &count), RINGCAST_ERR_NULL);
  EXPECT(ringcast_subscriber_drain(s, 8, NULL, NULL, &count), RINGCAST_ERR_NULL);
  EXPECT(ringcast_subscriber_drain(s, 8, on_drained, NULL, NULL), RINGCAST_ERR_NULL);
  for (int i = 0; i < 3; i++) EXPECT(ringcast_publisher_send(p, big, 3, &seq), RINGCAST_OK);
  EXPECT(ringcast_subscriber_recv(s, 0, &sample), RINGCAST_OK);
  EXPECT(ringcast_subscriber_drain(s, 8, on_drained, NULL, &count), RINGCAST_ERR_SAMPLE_OUTSTANDING);
  EXPECT(ringcast_sample_release(s, &sample), RINGCAST_OK); /* seq 5 */
  EXPECT(ringcast_publisher_send(p, big, 3, &seq), RINGCAST_OK); /* seq 8 */
  EXPECT(ringcast_subscriber_drain(s, 2, on_drained, NULL, &count), RINGCAST_OK);
  EXPECT_TRUE(count == 2 && drained_n == 2 && drained[0] == 6 && drained[1] == 7);
  EXPECT(ringcast_subscriber_drain(s, 8, on_drained, NULL, &count), RINGCAST_OK);
  EXPECT_TRUE(count == 1 && drained_n == 3 && drained[2] == 8);
  EXPECT(ringcast_subscriber_drain(s, 8, on_drained, NULL, &count), RINGCAST_OK);
  EXPECT_TRUE(count == 0);
  /* Everything was handed back: the 4-slot ring takes four more at once. */
  for (int i = 0; i < 4; i++) EXPECT(ringcast_publisher_send(p, big, 1, &seq), RINGCAST_OK);
  EXPECT(ringcast_subscriber_drain(s, 8, on_drained, NULL, &count), RINGCAST_OK);
  EXPECT_TRUE(count == 4 && drained_n == 7 && drained[6] == 12);
  /* A callback that stops: the messages after it stay for the next receive. */
  for (int i = 0; i < 3; i++) EXPECT(ringcast_publisher_send(p, big, 1, &seq), RINGCAST_OK);
  {
    int left = 2;
    EXPECT(ringcast_subscriber_drain(s, 8, stop_after, &left, &count), RINGCAST_OK);
    EXPECT_TRUE(count == 2 && drained_n == 9 && drained[8] == 14);
  }
  EXPECT(ringcast_subscriber_recv(s, 0, &sample), RINGCAST_OK);
  EXPECT_TRUE(sample.seq == 15);
  EXPECT(ringcast_sample_release(s, &sample), RINGCAST_OK);
  /* Inside the callback, every call on the draining subscriber or its wait set refuses
   * (and does nothing); publishing into another topic works. */
  {
    char other_topic[256];
    struct inside in;
    ringcast_publisher *p2 = NULL;
    ringcast_subscriber *s3 = NULL;
    ringcast_waitset *ws2 = NULL;
    memset(&in, 0, sizeof in);
    snprintf(other_topic, sizeof other_topic, "%s-2", topic);
    EXPECT(ringcast_publisher_create(other_topic, &cfg, &p2), RINGCAST_OK);
    EXPECT(ringcast_subscriber_attach(other_topic, &opts, 0, &s3), RINGCAST_OK);
    EXPECT(ringcast_waitset_create(0, &ws2), RINGCAST_OK);
    EXPECT(ringcast_waitset_add(ws2, s), RINGCAST_OK);
    EXPECT(ringcast_waitset_add(ws2, s3), RINGCAST_OK);
    in.s = s;
    in.other = s3;
    in.ws = ws2;
    in.elsewhere = p2;
    EXPECT(ringcast_publisher_send(p, big, 1, &seq), RINGCAST_OK);
    EXPECT(ringcast_subscriber_drain(s, 8, reenter, &in, &count), RINGCAST_OK);
    EXPECT_TRUE(count == 1 && in.calls == 1);
    for (int i = 0; i < 9; i++) {
      EXPECT(in.st[i], RINGCAST_ERR_REENTRANT);
    }
    /* Nothing was done by the refused calls: both are still in the set, s3 has the relay. */
    EXPECT(ringcast_subscriber_recv(s3, 0, &sample), RINGCAST_OK);
    EXPECT_TRUE(sample.len == 5 && memcmp(sample.data, "relay", 5) == 0);
    EXPECT(ringcast_sample_release(s3, &sample), RINGCAST_OK);
    EXPECT(ringcast_waitset_remove(ws2, s), RINGCAST_OK);
    EXPECT(ringcast_waitset_remove(ws2, s3), RINGCAST_OK);
    EXPECT(ringcast_waitset_destroy(ws2), RINGCAST_OK);
    EXPECT(ringcast_subscriber_destroy(s3), RINGCAST_OK);
    EXPECT(ringcast_publisher_destroy(p2), RINGCAST_OK);
  }

  /* A monitor never holds a Block publisher back: ten loans into four slots, none waits
   * (timeout 0), and the monitor is told exactly what it missed. */
  {
    char mtopic[128];
    ringcast_publisher *mp = NULL;
    ringcast_subscriber *m = NULL;
    ringcast_subscriber_options mopts = opts;
    snprintf(mtopic, sizeof mtopic, "%s-mon", topic);
    EXPECT(ringcast_publisher_create(mtopic, &cfg, &mp), RINGCAST_OK);
    mopts.monitor = 1;
    mopts.start = RINGCAST_START_LATEST;
    EXPECT(ringcast_subscriber_attach(mtopic, &mopts, 0, &m), RINGCAST_OK);
    EXPECT(ringcast_publisher_subscriber_count(mp, &count), RINGCAST_OK);
    EXPECT_TRUE(count == 0);
    for (unsigned char i = 0; i < 10; i++) {
      EXPECT(ringcast_publisher_loan(mp, 0, &loan), RINGCAST_OK);
      if (loan.data != NULL) ((unsigned char *)loan.data)[0] = i;
      EXPECT(ringcast_loan_commit(mp, &loan, 1, &seq), RINGCAST_OK);
    }
    EXPECT(ringcast_subscriber_recv(m, 0, &sample), RINGCAST_OK);
    EXPECT_TRUE(sample.seq == 6 && sample.lost == 6 && sample.len == 1 &&
                ((const unsigned char *)sample.data)[0] == 6);
    EXPECT(ringcast_sample_release(m, &sample), RINGCAST_OK);
    EXPECT(ringcast_subscriber_lost(m, &lost), RINGCAST_OK);
    EXPECT_TRUE(lost == 6);
    EXPECT(ringcast_subscriber_destroy(m), RINGCAST_OK);
    EXPECT(ringcast_publisher_destroy(mp), RINGCAST_OK);
  }

  /* Many publishers per topic: the config field and its versions, joining, the two new
   * errors, lane and writer in samples, the old-size receive, losses per lane. */
  {
    char ltopic[128];
    ringcast_publisher *a = NULL, *b = NULL, *c = NULL;
    ringcast_subscriber *ls = NULL;
    ringcast_publisher_config lcfg = cfg;
    uint32_t lane_a = 99, lane_b = 99, writer_a = 0, writer_b = 0;
    snprintf(ltopic, sizeof ltopic, "%s-lanes", topic);
    EXPECT_TRUE(sizeof(ringcast_sample) == 40 && sizeof(ringcast_publisher_config) == 72);
    EXPECT_TRUE(cfg.max_publishers == 1); /* the default */
    EXPECT_TRUE(strcmp(ringcast_status_str(RINGCAST_ERR_MISMATCH), "unknown status") != 0);
    EXPECT_TRUE(strcmp(ringcast_status_str(RINGCAST_ERR_PUBLISHERS_FULL), "unknown status") != 0);
    EXPECT_TRUE(RINGCAST_ERR_MISMATCH == -23 && RINGCAST_ERR_PUBLISHERS_FULL == -24);
    lcfg.max_publishers = 0;
    EXPECT(ringcast_publisher_create(ltopic, &lcfg, &a), RINGCAST_ERR_CONFIG);
    lcfg.max_publishers = 65;
    EXPECT(ringcast_publisher_create(ltopic, &lcfg, &a), RINGCAST_ERR_CONFIG);
    /* A config of the header before max_publishers (64 bytes) is read with 1 there: an
     * exclusive topic, which a second publisher cannot join. */
    {
      struct {
        uint32_t struct_size, overflow;
        uint64_t slots, slot_size, max_subscribers, stall_timeout_ns;
        uint32_t mode, wait;
        const char *prefix;
        uint32_t memory;
      } old_cfg;
      EXPECT_TRUE(sizeof old_cfg == 64);
      memcpy(&old_cfg, &cfg, sizeof old_cfg);
      old_cfg.struct_size = sizeof old_cfg;
      EXPECT(ringcast_publisher_create(ltopic, (const ringcast_publisher_config *)(void *)&old_cfg, &a),
             RINGCAST_OK);
      EXPECT(ringcast_publisher_lane(a, &lane_a), RINGCAST_OK);
      EXPECT_TRUE(lane_a == 0);
      lcfg.max_publishers = 2;
      EXPECT(ringcast_publisher_create(ltopic, &lcfg, &b), RINGCAST_ERR_MISMATCH);
      EXPECT_TRUE(b == NULL);
      EXPECT(ringcast_publisher_destroy(a), RINGCAST_OK);
      a = NULL;
    }
    lcfg.max_publishers = 2;
    EXPECT(ringcast_publisher_create(ltopic, &lcfg, &a), RINGCAST_OK);
    EXPECT(ringcast_subscriber_attach(ltopic, &opts, 0, &ls), RINGCAST_OK); /* oldest */
    EXPECT(ringcast_publisher_create(ltopic, &lcfg, &b), RINGCAST_OK); /* joins */
    /* Joining needs the topic's configuration, and a free lane. */
    {
      ringcast_publisher_config other = lcfg;
      other.slots = 8;
      EXPECT(ringcast_publisher_create(ltopic, &other, &c), RINGCAST_ERR_MISMATCH);
      EXPECT_TRUE(c == NULL && strstr(ringcast_last_error(), "slots") != NULL);
      other = lcfg;
      other.max_publishers = 3;
      EXPECT(ringcast_publisher_create(ltopic, &other, &c), RINGCAST_ERR_MISMATCH);
      EXPECT_TRUE(c == NULL && strstr(ringcast_last_error(), "max publishers") != NULL);
      other = lcfg;
      other.overflow = RINGCAST_OVERFLOW_OVERWRITE;
      EXPECT(ringcast_publisher_create(ltopic, &other, &c), RINGCAST_ERR_MISMATCH);
      EXPECT_TRUE(c == NULL && strstr(ringcast_last_error(), "overflow") != NULL);
      EXPECT(ringcast_publisher_create(ltopic, &lcfg, &c), RINGCAST_ERR_PUBLISHERS_FULL);
      EXPECT_TRUE(c == NULL && strstr(ringcast_last_error(), "2 publishers") != NULL);
    }
    EXPECT(ringcast_publisher_lane(NULL, &lane_a), RINGCAST_ERR_NULL);
    EXPECT(ringcast_publisher_lane(a, NULL), RINGCAST_ERR_NULL);
    EXPECT(ringcast_publisher_writer(NULL, &writer_a), RINGCAST_ERR_NULL);
    EXPECT(ringcast_publisher_writer(a, NULL), RINGCAST_ERR_NULL);
    EXPECT(ringcast_publisher_lane(a, &lane_a), RINGCAST_OK);
    EXPECT(ringcast_publisher_lane(b, &lane_b), RINGCAST_OK);
    EXPECT(ringcast_publisher_writer(a, &writer_a), RINGCAST_OK);
    EXPECT(ringcast_publisher_writer(b, &writer_b), RINGCAST_OK);
    EXPECT_TRUE(lane_a == 0 && lane_b == 1);
    /* Lane and writer are readable with a loan outstanding (they never change). */
    EXPECT(ringcast_publisher_loan(a, 0, &loan), RINGCAST_OK);
    EXPECT(ringcast_publisher_lane(a, &lane_a), RINGCAST_OK);
    memcpy(loan.data, "A0", 2);
    EXPECT(ringcast_loan_commit(a, &loan, 2, &seq), RINGCAST_OK);
    EXPECT_TRUE(seq == 0);
    EXPECT(ringcast_publisher_send(b, "B0", 2, &seq), RINGCAST_OK);
    EXPECT_TRUE(seq == 0); /* sequences are per lane */
    EXPECT(ringcast_publisher_send(b, "B1", 2, &seq), RINGCAST_OK);
    EXPECT_TRUE(seq == 1);
    EXPECT(ringcast_publisher_send(a, "A1", 2, &seq), RINGCAST_OK);
    EXPECT(ringcast_publisher_send(b, "B2", 2, &seq), RINGCAST_OK);
    /* A sample size no header had: refused, and nothing is received. */
    EXPECT(ringcast_subscriber_recv_sized(ls, 0, &sample, 0), RINGCAST_ERR_VERSION);
    EXPECT(ringcast_subscriber_recv_sized(ls, 0, &sample, sizeof sample + 8), RINGCAST_ERR_VERSION);
    EXPECT(ringcast_subscriber_recv_sized(ls, 0, NULL, sizeof sample), RINGCAST_ERR_NULL);
    EXPECT(ringcast_subscriber_recv_sized(NULL, 0, &sample, sizeof sample), RINGCAST_ERR_NULL);
    {
      /* Receive everything: each publisher's in its order, named by lane and writer. The
       * first with a caller of the header before lanes: the function (not this header's
       * macro) writes the 32 bytes that caller has, never the canary after them, and
       * release clears only those. */
      struct {
        struct {
          const void *data;
          size_t len;
          uint64_t seq, lost;
        } old;
        uint64_t canary;
      } o;
      EXPECT_TRUE(sizeof o.old == 32 && (char *)&o.canary == (char *)&o + 32);
      o.canary = 0x5a5a5a5a5a5a5a5aULL;
      EXPECT((ringcast_subscriber_recv)(ls, 0, (ringcast_sample *)(void *)&o), RINGCAST_OK);
      EXPECT_TRUE(o.canary == 0x5a5a5a5a5a5a5a5aULL && o.old.len == 2 && o.old.lost == 0);
      char seen[5][3];
      uint64_t seqs[5];
      memcpy(seen[0], o.old.data, 2);
      seen[0][2] = 0;
      seqs[0] = o.old.seq;
      EXPECT(ringcast_sample_release(ls, (ringcast_sample *)(void *)&o), RINGCAST_OK);
      EXPECT_TRUE(o.canary == 0x5a5a5a5a5a5a5a5aULL && o.old.data == NULL && o.old.seq == 0);
      int from_a = seen[0][0] == 'A', next_a = 0, next_b = 0, bad = 0;
      uint32_t lanes_seen[5];
      lanes_seen[0] = from_a ? lane_a : lane_b;
      for (int i = 1; i < 5; i++) {
        memset(&sample, 0xee, sizeof sample);
        EXPECT(ringcast_subscriber_recv(ls, 0, &sample), RINGCAST_OK);
        memcpy(seen[i], sample.data, 2);
        seen[i][2] = 0;
        seqs[i] = sample.seq;
        lanes_seen[i] = sample.lane;
        int is_a = seen[i][0] == 'A';
        if (sample.lane != (is_a ? lane_a : lane_b) || sample.writer != (is_a ? writer_a : writer_b))
          bad++;
        EXPECT(ringcast_sample_release(ls, &sample), RINGCAST_OK);
      }
      for (int i = 0; i < 5; i++) {
        int is_a = seen[i][0] == 'A';
        int *next = is_a ? &next_a : &next_b;
        if (seqs[i] != (uint64_t)*next || seen[i][1] != (char)('0' + *next)) bad++;
        if (lanes_seen[i] != (is_a ? lane_a : lane_b)) bad++;
        (*next)++;
      }
      EXPECT_TRUE(bad == 0 && next_a == 2 && next_b == 3);
    }
    EXPECT(ringcast_subscriber_lost_in(ls, 0, &lost), RINGCAST_OK);
    EXPECT_TRUE(lost == 0);
    EXPECT(ringcast_subscriber_lost_in(ls, 2, &lost), RINGCAST_ERR_INVALID_ARGUMENT);
    EXPECT(ringcast_subscriber_lost_in(ls, 0, NULL), RINGCAST_ERR_NULL);
    EXPECT(ringcast_subscriber_lost_in(NULL, 0, &lost), RINGCAST_ERR_NULL);
    /* One leaves: the topic lives on with the other, whose lane the drain names. */
    EXPECT(ringcast_publisher_destroy(a), RINGCAST_OK);
    EXPECT(ringcast_publisher_send(b, "B3", 2, &seq), RINGCAST_OK);
    drained_n = 0;
    last_lane = 99;
    EXPECT(ringcast_subscriber_drain(ls, 8, on_drained, NULL, &count), RINGCAST_OK);
    EXPECT_TRUE(count == 1 && drained[0] == 3 && last_lane == lane_b && last_writer == writer_b);
    /* The last one leaves: the end, closed by its publisher (not died). */
    int closed = 7;
    EXPECT(ringcast_subscriber_closed_by_publisher(ls, &closed), RINGCAST_OK);
    EXPECT_TRUE(closed == 0);
    EXPECT(ringcast_subscriber_closed_by_publisher(ls, NULL), RINGCAST_ERR_NULL);
    EXPECT(ringcast_subscriber_closed_by_publisher(NULL, &closed), RINGCAST_ERR_NULL);
    EXPECT(ringcast_publisher_destroy(b), RINGCAST_OK);
    EXPECT(ringcast_subscriber_recv(ls, 1000000000, &sample), RINGCAST_DISCONNECTED);
    EXPECT(ringcast_subscriber_closed_by_publisher(ls, &closed), RINGCAST_OK);
    EXPECT_TRUE(closed == 1);
    EXPECT(ringcast_subscriber_destroy(ls), RINGCAST_OK);
  }

  /* Destroy with a loan outstanding and with a sample held: said so, nothing leaks. */
  EXPECT(ringcast_publisher_send(p, big, 2, &seq), RINGCAST_OK);
  EXPECT(ringcast_subscriber_recv(s, -1, &sample), RINGCAST_OK);
  EXPECT(ringcast_publisher_loan(p, -1, &loan), RINGCAST_OK);
  EXPECT(ringcast_publisher_destroy(p), RINGCAST_ABANDONED);
  EXPECT(ringcast_subscriber_destroy(s), RINGCAST_ABANDONED);
  EXPECT(ringcast_publisher_destroy(NULL), RINGCAST_OK);
  EXPECT(ringcast_subscriber_destroy(NULL), RINGCAST_OK);

  /* The topic is gone with its publisher. */
  EXPECT(ringcast_subscriber_attach(topic, &opts, 0, &s), RINGCAST_ERR_NOT_FOUND);
  printf("RESULT checks=%d failed=%d\n", checks, failed);
  return failed == 0 ? 0 : 1;
}
