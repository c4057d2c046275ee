/* One C wait set holding a subscriber, a server and a client (issue 27):
 *   svc_waitset PREFIX LOCAL REMOTE TOPIC
 * LOCAL is served here (its client is a thread of this process); REMOTE is served by
 * another process (svc_server) that the test SIGKILLs after "HANG_SENT"; TOPIC is
 * published here. Each member must be reported ready when, and only when, a receive
 * would not wait. Prints "READY", "HANG_SENT", "CLIENT_READY" (once the dead server's
 * client is reported), then "RESULT checks=N failed=F". */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ringcast.h"

static const long long S = 1000000000LL;
static const long long MS = 1000000LL;

/* The local service's client, on a thread: connects (then rings the notifier), and
 * calls "hello" on each 'c' read from `cmd`, answering 'k' (or 'E') on `res`. */
struct helper {
  const char *prefix, *service;
  ringcast_notifier *notifier;
  int cmd[2], res[2];
};

static void reply(struct helper *h, char c) {
  if (write(h->res[1], &c, 1) != 1) perror("write");
}

static void *helper_main(void *arg) {
  struct helper *h = arg;
  ringcast_client_options o;
  ringcast_client_options_init(&o);
  o.prefix = h->prefix;
  ringcast_client *c = NULL;
  ringcast_status st = ringcast_client_connect(h->service, &o, 5 * S, &c);
  reply(h, st == RINGCAST_OK ? 'c' : 'E');
  ringcast_notifier_notify(h->notifier);
  if (st != RINGCAST_OK) return NULL;
  char cmd;
  while (read(h->cmd[0], &cmd, 1) == 1 && cmd == 'c') {
    ringcast_sample r;
    st = ringcast_client_call(c, "hello", 5, 5 * S, &r);
    int ok = st == RINGCAST_OK && r.len == 8 && memcmp(r.data, "re:hello", 8) == 0;
    if (st == RINGCAST_OK) ringcast_response_release(c, &r);
    reply(h, ok ? 'k' : 'E');
  }
  ringcast_client_destroy(c);
  return NULL;
}

static char result(struct helper *h) {
  char c = 0;
  if (read(h->res[0], &c, 1) != 1) return 0;
  return c;
}

static int one(const ringcast_member *m, size_t len, ringcast_member_kind kind, const void *handle) {
  if (len != 1 || m[0].kind != kind) return 0;
  const void *set = kind == RINGCAST_MEMBER_SUBSCRIBER ? (const void *)m[0].subscriber
                    : kind == RINGCAST_MEMBER_SERVER   ? (const void *)m[0].server
                                                       : (const void *)m[0].client;
  int others = (m[0].subscriber != NULL) + (m[0].server != NULL) + (m[0].client != NULL);
  return set == handle && others == 1;
}

static int is(const ringcast_sample *r, const char *text) {
  return r->len == strlen(text) && memcmp(r->data, text, r->len) == 0;
}

int main(int argc, char **argv) {
  if (argc != 5) return 2;
  const char *prefix = argv[1], *local = argv[2], *remote = argv[3], *topic = argv[4];
  ringcast_publisher_config pcfg;
  ringcast_subscriber_options sopts;
  ringcast_server_config scfg;
  ringcast_client_options copts;
  ringcast_publisher_config_init(&pcfg);
  ringcast_subscriber_options_init(&sopts);
  ringcast_server_config_init(&scfg);
  ringcast_client_options_init(&copts);
  pcfg.prefix = sopts.prefix = scfg.prefix = copts.prefix = prefix;
  ringcast_publisher *p = NULL;
  ringcast_subscriber *sub = NULL;
  ringcast_server *srv = NULL;
  ringcast_client *cli = NULL;
  ringcast_waitset *ws = NULL;
  ringcast_notifier *n = NULL;
  EXPECT(ringcast_publisher_create(topic, &pcfg, &p), RINGCAST_OK);
  EXPECT(ringcast_subscriber_attach(topic, &sopts, 0, &sub), RINGCAST_OK);
  EXPECT(ringcast_server_create(local, &scfg, &srv), RINGCAST_OK);
  EXPECT(ringcast_client_connect(remote, &copts, 5 * S, &cli), RINGCAST_OK);
  EXPECT(ringcast_waitset_create(0, &ws), RINGCAST_OK);
  EXPECT(ringcast_waitset_notifier(ws, &n), RINGCAST_OK);
  if (failed) {
    printf("RESULT checks=%d failed=%d\n", checks, failed);
    return 1;
  }
  EXPECT(ringcast_waitset_add(ws, sub), RINGCAST_OK);
  EXPECT(ringcast_waitset_add_server(ws, srv), RINGCAST_OK);
  EXPECT(ringcast_waitset_add_client(ws, cli), RINGCAST_OK);
  printf("READY\n");
  fflush(stdout);

  ringcast_member m[4];
  size_t len = 99;
  ringcast_sample r;
  ringcast_request req;
  uint64_t call = 0;

  /* Nothing is ready. */
  EXPECT(ringcast_waitset_wait_members(ws, 100 * MS, m, 4, &len), RINGCAST_TIMEOUT);
  EXPECT_TRUE(len == 0);

  /* A client connecting greets the server: that wakes no one (the greeting is handled
   * inside the wait, or the connect would time out); the notifier does. */
  struct helper h = {prefix, local, n, {-1, -1}, {-1, -1}};
  EXPECT_TRUE(pipe(h.cmd) == 0 && pipe(h.res) == 0);
  pthread_t t;
  EXPECT_TRUE(pthread_create(&t, NULL, helper_main, &h) == 0);
  len = 99;
  EXPECT(ringcast_waitset_wait_members(ws, 10 * S, m, 4, &len), RINGCAST_NOTIFIED);
  EXPECT_TRUE(len == 0);
  EXPECT_TRUE(result(&h) == 'c');

  /* A message: the subscriber, only it. */
  EXPECT(ringcast_publisher_send(p, "m1", 2, NULL), RINGCAST_OK);
  EXPECT(ringcast_waitset_wait_members(ws, 5 * S, m, 4, &len), RINGCAST_OK);
  EXPECT_TRUE(one(m, len, RINGCAST_MEMBER_SUBSCRIBER, sub));
  EXPECT(ringcast_subscriber_recv(sub, 0, &r), RINGCAST_OK);
  EXPECT_TRUE(is(&r, "m1"));
  EXPECT(ringcast_waitset_wait_members(ws, 0, m, 4, &len), RINGCAST_ERR_SAMPLE_OUTSTANDING);
  EXPECT(ringcast_sample_release(sub, &r), RINGCAST_OK);
  EXPECT(ringcast_waitset_wait_members(ws, 50 * MS, m, 4, &len), RINGCAST_TIMEOUT);
  EXPECT_TRUE(len == 0);

  /* A request: the server, only it, until it is received. */
  EXPECT_TRUE(write(h.cmd[1], "c", 1) == 1);
  EXPECT(ringcast_waitset_wait_members(ws, 5 * S, m, 4, &len), RINGCAST_OK);
  EXPECT_TRUE(one(m, len, RINGCAST_MEMBER_SERVER, srv));
  EXPECT(ringcast_waitset_wait_members(ws, 5 * S, m, 4, &len), RINGCAST_OK);
  EXPECT_TRUE(one(m, len, RINGCAST_MEMBER_SERVER, srv));
  EXPECT(ringcast_server_recv(srv, 0, &req), RINGCAST_OK);
  EXPECT_TRUE(req.len == 5 && memcmp(req.data, "hello", 5) == 0);
  EXPECT(ringcast_waitset_wait_members(ws, 0, m, 4, &len), RINGCAST_ERR_SAMPLE_OUTSTANDING);
  EXPECT(ringcast_request_respond(srv, &req, "re:hello", 8), RINGCAST_OK);
  EXPECT_TRUE(result(&h) == 'k');
  EXPECT(ringcast_waitset_wait_members(ws, 50 * MS, m, 4, &len), RINGCAST_TIMEOUT);
  EXPECT_TRUE(len == 0);
  EXPECT(ringcast_server_recv(srv, 0, &req), RINGCAST_TIMEOUT);

  /* A response: the client, only it. */
  EXPECT(ringcast_client_send(cli, "ping", 4, 5 * S, &call), RINGCAST_OK);
  EXPECT(ringcast_waitset_wait_members(ws, 5 * S, m, 4, &len), RINGCAST_OK);
  EXPECT_TRUE(one(m, len, RINGCAST_MEMBER_CLIENT, cli));
  EXPECT(ringcast_client_recv(cli, call, 0, &r), RINGCAST_OK);
  EXPECT_TRUE(is(&r, "echo:ping"));
  EXPECT(ringcast_waitset_wait_members(ws, 0, m, 4, &len), RINGCAST_ERR_SAMPLE_OUTSTANDING);
  EXPECT(ringcast_response_release(cli, &r), RINGCAST_OK);
  EXPECT(ringcast_waitset_wait_members(ws, 50 * MS, m, 4, &len), RINGCAST_TIMEOUT);
  EXPECT_TRUE(len == 0);

  /* Two ready at once, reported one per wait with ready_cap 1: round robin. */
  EXPECT(ringcast_publisher_send(p, "m2", 2, NULL), RINGCAST_OK);
  EXPECT(ringcast_client_send(cli, "two", 3, 5 * S, &call), RINGCAST_OK);
  len = 0;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    ringcast_status st = ringcast_waitset_wait_members(ws, 5 * S, m, 4, &len);
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (st != RINGCAST_OK || len >= 2 || now.tv_sec - start.tv_sec > 5) break;
    struct timespec nap = {0, 1000000};
    nanosleep(&nap, NULL);
  }
  EXPECT_TRUE(len == 2);
  ringcast_member first, second;
  EXPECT(ringcast_waitset_wait_members(ws, 0, &first, 1, &len), RINGCAST_OK);
  EXPECT_TRUE(len == 1);
  EXPECT(ringcast_waitset_wait_members(ws, 0, &second, 1, &len), RINGCAST_OK);
  EXPECT_TRUE(len == 1 && first.kind != second.kind);
  EXPECT_TRUE((first.kind == RINGCAST_MEMBER_CLIENT) + (second.kind == RINGCAST_MEMBER_CLIENT) == 1);
  EXPECT_TRUE((first.kind == RINGCAST_MEMBER_SUBSCRIBER) + (second.kind == RINGCAST_MEMBER_SUBSCRIBER) == 1);
  EXPECT(ringcast_subscriber_recv(sub, 0, &r), RINGCAST_OK);
  EXPECT_TRUE(is(&r, "m2"));
  EXPECT(ringcast_sample_release(sub, &r), RINGCAST_OK);
  EXPECT(ringcast_client_recv(cli, call, 0, &r), RINGCAST_OK);
  EXPECT_TRUE(is(&r, "echo:two"));
  EXPECT(ringcast_response_release(cli, &r), RINGCAST_OK);
  EXPECT(ringcast_waitset_wait_members(ws, 50 * MS, m, 4, &len), RINGCAST_TIMEOUT);

  /* The subscriber-only wait refuses a set with servers and clients. */
  ringcast_subscriber *rs[2];
  EXPECT(ringcast_waitset_wait(ws, 0, rs, 2, &len), RINGCAST_ERR_WAITSET);

  /* The remote server dies (SIGKILL by the test) with a call in flight: the client
   * becomes ready, and its receive says DISCONNECTED. */
  EXPECT(ringcast_client_send(cli, "hang", 4, 5 * S, &call), RINGCAST_OK);
  printf("HANG_SENT\n");
  fflush(stdout);
  EXPECT(ringcast_waitset_wait_members(ws, 30 * S, m, 4, &len), RINGCAST_OK);
  EXPECT_TRUE(one(m, len, RINGCAST_MEMBER_CLIENT, cli));
  printf("CLIENT_READY len=%zu\n", len);
  fflush(stdout);
  EXPECT(ringcast_client_recv(cli, call, 0, &r), RINGCAST_DISCONNECTED);
  EXPECT(ringcast_waitset_remove_client(ws, cli), RINGCAST_OK);
  EXPECT(ringcast_waitset_remove_client(ws, cli), RINGCAST_ERR_WAITSET);
  EXPECT(ringcast_waitset_wait_members(ws, 50 * MS, m, 4, &len), RINGCAST_TIMEOUT);
  EXPECT_TRUE(len == 0);

  /* Teardown: a server destroyed in the set leaves it; then the subscriber-only wait
   * works again; destroying the set gives the subscriber back. */
  EXPECT_TRUE(write(h.cmd[1], "q", 1) == 1);
  pthread_join(t, NULL);
  close(h.cmd[0]);
  close(h.cmd[1]);
  close(h.res[0]);
  close(h.res[1]);
  EXPECT(ringcast_client_destroy(cli), RINGCAST_OK);
  EXPECT(ringcast_server_destroy(srv), RINGCAST_OK);
  EXPECT(ringcast_waitset_wait_members(ws, 0, m, 4, &len), RINGCAST_TIMEOUT);
  EXPECT(ringcast_waitset_wait(ws, 0, rs, 2, &len), RINGCAST_TIMEOUT);
  EXPECT(ringcast_notifier_destroy(n), RINGCAST_OK);
  EXPECT(ringcast_waitset_destroy(ws), RINGCAST_OK);
  EXPECT(ringcast_subscriber_recv(sub, 0, &r), RINGCAST_TIMEOUT);
  EXPECT(ringcast_subscriber_destroy(sub), RINGCAST_OK);
  EXPECT(ringcast_publisher_destroy(p), RINGCAST_OK);
  printf("RESULT checks=%d failed=%d\n", checks, failed);
  fflush(stdout);
  return failed ? 1 : 0;
}
