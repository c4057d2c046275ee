/* A C client:  svc_client PREFIX SERVICE MODE
 *   MODE "basic": calls, a stream, an empty end, a deferred answer, then "quit";
 *     prints "RESULT checks=N failed=F".
 *   MODE "hang": prints "CALLING", calls "hang" (30 s timeout) and prints
 *     "RESULT status=S ms=M" when the call returns. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "ringcast.h"

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int is(const ringcast_sample *r, const char *want) {
  return r->len == strlen(want) && memcmp(r->data, want, r->len) == 0;
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  const long long S = 1000000000LL;
  ringcast_client_options o;
  ringcast_client_options_init(&o);
  o.prefix = argv[1];
  ringcast_client *c = NULL;
  ringcast_status st = ringcast_client_connect(argv[2], &o, 20 * S, &c);
  if (st != RINGCAST_OK) {
    fprintf(stderr, "svc_client: connect: %s (%s)\n", ringcast_status_str(st), ringcast_last_error());
    return 1;
  }
  ringcast_sample r;
  if (strcmp(argv[3], "hang") == 0) {
    printf("CALLING\n");
    fflush(stdout);
    long long t0 = now_ms();
    st = ringcast_client_call(c, "hang", 4, 30 * S, &r);
    printf("RESULT status=%d ms=%lld\n", (int)st, now_ms() - t0);
    fflush(stdout);
    /* Gone stays gone. */
    EXPECT(ringcast_client_call(c, "x", 1, S, &r), RINGCAST_DISCONNECTED);
    ringcast_client_destroy(c);
    return failed ? 1 : 0;
  }
  /* One call. */
  EXPECT(ringcast_client_call(c, "hello", 5, 10 * S, &r), RINGCAST_OK);
  EXPECT_TRUE(is(&r, "echo:hello"));
  /* One response held at a time. */
  ringcast_sample r2;
  EXPECT(ringcast_client_call(c, "again", 5, 10 * S, &r2), RINGCAST_ERR_SAMPLE_OUTSTANDING);
  EXPECT(ringcast_response_release(c, &r), RINGCAST_OK);
  EXPECT_TRUE(r.data == NULL && r.len == 0);
  EXPECT(ringcast_response_release(c, &r), RINGCAST_ERR_NOT_HELD);
  /* An empty request. */
  EXPECT(ringcast_client_call(c, NULL, 0, 10 * S, &r), RINGCAST_OK);
  EXPECT_TRUE(is(&r, "echo:"));
  EXPECT(ringcast_response_release(c, &r), RINGCAST_OK);
  /* A stream. */
  uint64_t call = 0;
  EXPECT(ringcast_client_send(c, "stream 3", 8, 10 * S, &call), RINGCAST_OK);
  EXPECT_TRUE(call != 0);
  for (int i = 0; i < 3; i++) {
    char want[16];
    snprintf(want, sizeof want, "part %d", i);
    EXPECT(ringcast_client_recv(c, call, 10 * S, &r), RINGCAST_OK);
    EXPECT_TRUE(is(&r, want) && r.seq == call);
    EXPECT(ringcast_response_release(c, &r), RINGCAST_OK);
  }
  EXPECT(ringcast_client_recv(c, call, 10 * S, &r), RINGCAST_ENDED);
  EXPECT(ringcast_client_recv(c, call, 0, &r), RINGCAST_ENDED);
  EXPECT(ringcast_client_recv(c, call + 100, 0, &r), RINGCAST_ERR_UNKNOWN_CALL);
  /* An end with no response. */
  EXPECT(ringcast_client_call(c, "end", 3, 10 * S, &r), RINGCAST_ERR_NO_RESPONSE);
  /* A deferred answer arrives after the next call's (set aside, then received). */
  uint64_t late = 0, now = 0;
  EXPECT(ringcast_client_send(c, "late", 4, 10 * S, &late), RINGCAST_OK);
  EXPECT(ringcast_client_send(c, "now", 3, 10 * S, &now), RINGCAST_OK);
  EXPECT(ringcast_client_recv(c, late, 10 * S, &r), RINGCAST_OK);
  EXPECT_TRUE(is(&r, "late"));
  EXPECT(ringcast_response_release(c, &r), RINGCAST_OK);
  EXPECT(ringcast_client_recv(c, now, 10 * S, &r), RINGCAST_OK);
  EXPECT_TRUE(is(&r, "echo:now"));
  EXPECT(ringcast_response_release(c, &r), RINGCAST_OK);
  /* Too large. */
  size_t max = 0;
  EXPECT(ringcast_client_max_request(c, &max), RINGCAST_OK);
  EXPECT_TRUE(max == 4096);
  static char big[5000];
  EXPECT(ringcast_client_call(c, big, max + 1, 10 * S, &r), RINGCAST_ERR_TOO_LARGE);
  /* The server's last answer; it then stops, and the client sees it gone. */
  EXPECT(ringcast_client_call(c, "loan 5", 6, 10 * S, &r), RINGCAST_OK);
  EXPECT_TRUE(is(&r, "loaned:xxxxx"));
  EXPECT(ringcast_response_release(c, &r), RINGCAST_OK);
  EXPECT(ringcast_client_call(c, "quit", 4, 10 * S, &r), RINGCAST_OK);
  EXPECT_TRUE(is(&r, "bye"));
  EXPECT(ringcast_response_release(c, &r), RINGCAST_OK);
  EXPECT(ringcast_client_call(c, "after", 5, 10 * S, &r), RINGCAST_DISCONNECTED);
  EXPECT(ringcast_client_destroy(c), RINGCAST_OK);
  printf("RESULT checks=%d failed=%d\n", checks, failed);
  return failed ? 1 : 0;
}
