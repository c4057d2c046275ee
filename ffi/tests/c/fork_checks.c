/* Handles inherited across fork(): a child's calls on them are refused with
 * RINGCAST_ERR_INHERITED, and destroying them in the child leaves the parent's topic,
 * subscription and service working (no lane lock released, no entry freed, no name
 * unlinked).
 *   fork_checks PREFIX
 * Prints "RESULT checks=N failed=F". */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "ringcast.h"

static const long long S = 1000000000LL;

/* Connects a client (the server answers its greeting on the main thread). */
struct connecting {
  const char *prefix;
  ringcast_client *c;
  ringcast_status st;
  volatile int done;
};

static void *connect_client(void *arg) {
  struct connecting *k = arg;
  ringcast_client_options o;
  ringcast_client_options_init(&o);
  o.prefix = k->prefix;
  k->st = ringcast_client_connect("forked-svc", &o, 5 * S, &k->c);
  __atomic_store_n(&k->done, 1, __ATOMIC_RELEASE);
  return NULL;
}

/* The child: every call on an inherited handle is refused, destroying them is fine, and
 * new handles of its own work. Exits with the number of failed checks. */
static int child(const char *prefix, ringcast_publisher *p, ringcast_subscriber *s,
                 ringcast_waitset *ws, ringcast_server *srv, ringcast_client *c) {
  uint64_t seq = 0;
  ringcast_sample sample;
  ringcast_request req;
  ringcast_subscriber *ready[2];
  size_t n = 0;
  EXPECT(ringcast_publisher_send(p, "child", 5, &seq), RINGCAST_ERR_INHERITED);
  EXPECT(ringcast_subscriber_recv(s, 0, &sample), RINGCAST_ERR_INHERITED);
  EXPECT(ringcast_waitset_wait(ws, 0, ready, 2, &n), RINGCAST_ERR_INHERITED);
  EXPECT(ringcast_server_recv(srv, 0, &req), RINGCAST_ERR_INHERITED);
  EXPECT(ringcast_client_call(c, "x", 1, 0, &sample), RINGCAST_ERR_INHERITED);
  EXPECT_TRUE(strstr(ringcast_last_error(), "fork") != NULL);
  EXPECT(ringcast_waitset_destroy(ws), RINGCAST_OK);
  EXPECT(ringcast_subscriber_destroy(s), RINGCAST_OK);
  EXPECT(ringcast_publisher_destroy(p), RINGCAST_OK);
  EXPECT(ringcast_client_destroy(c), RINGCAST_OK);
  EXPECT(ringcast_server_destroy(srv), RINGCAST_OK);
  /* A subscriber of the child's own works on the parent's topic. */
  ringcast_subscriber_options o;
  ringcast_subscriber_options_init(&o);
  o.prefix = prefix;
  ringcast_subscriber *own = NULL;
  EXPECT(ringcast_subscriber_attach("forked", &o, 0, &own), RINGCAST_OK);
  EXPECT(ringcast_subscriber_destroy(own), RINGCAST_OK);
  return failed;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fork_checks PREFIX\n");
    return 2;
  }
  const char *prefix = argv[1];
  ringcast_publisher_config pc;
  ringcast_publisher_config_init(&pc);
  pc.prefix = prefix;
  pc.overflow = RINGCAST_OVERFLOW_BLOCK;
  pc.slots = 4;
  pc.max_publishers = 2;
  ringcast_publisher *p = NULL;
  EXPECT(ringcast_publisher_create("forked", &pc, &p), RINGCAST_OK);
  ringcast_subscriber_options so;
  ringcast_subscriber_options_init(&so);
  so.prefix = prefix;
  ringcast_subscriber *s = NULL, *s2 = NULL;
  EXPECT(ringcast_subscriber_attach("forked", &so, 0, &s), RINGCAST_OK);
  EXPECT(ringcast_subscriber_attach("forked", &so, 0, &s2), RINGCAST_OK);
  ringcast_waitset *ws = NULL;
  EXPECT(ringcast_waitset_create(0, &ws), RINGCAST_OK);
  EXPECT(ringcast_waitset_add(ws, s2), RINGCAST_OK);
  ringcast_server_config sc;
  ringcast_server_config_init(&sc);
  sc.prefix = prefix;
  ringcast_server *srv = NULL;
  EXPECT(ringcast_server_create("forked-svc", &sc, &srv), RINGCAST_OK);
  ringcast_client *c = NULL;
  if (failed) goto out;
  struct connecting k = {prefix, NULL, RINGCAST_OK, 0};
  pthread_t t;
  EXPECT_TRUE(pthread_create(&t, NULL, connect_client, &k) == 0);
  ringcast_request greeting;
  while (!__atomic_load_n(&k.done, __ATOMIC_ACQUIRE))
    EXPECT(ringcast_server_recv(srv, S / 20, &greeting), RINGCAST_TIMEOUT);
  pthread_join(t, NULL);
  EXPECT(k.st, RINGCAST_OK);
  c = k.c;
  if (failed) goto out;

  uint64_t seq = 99;
  EXPECT(ringcast_publisher_send(p, "before", 6, &seq), RINGCAST_OK);
  EXPECT_TRUE(seq == 0);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) _exit(child(prefix, p, s, ws, srv, c));
  int status = 0;
  EXPECT_TRUE(waitpid(pid, &status, 0) == pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  /* The parent's topic is whole: its name is there, its lane is still its own (a second
   * publisher gets the other lane), its subscribers read on in order. */
  char path[512];
  snprintf(path, sizeof path, "/dev/shm/%s.forked", prefix);
  struct stat st;
  EXPECT_TRUE(stat(path, &st) == 0);
  ringcast_publisher *p2 = NULL;
  EXPECT(ringcast_publisher_create("forked", &pc, &p2), RINGCAST_OK);
  uint32_t lane = 9;
  EXPECT(ringcast_publisher_lane(p2, &lane), RINGCAST_OK);
  EXPECT_TRUE(lane == 1);
  EXPECT(ringcast_publisher_send(p, "after", 5, &seq), RINGCAST_OK);
  EXPECT_TRUE(seq == 1);
  ringcast_sample m;
  EXPECT(ringcast_subscriber_recv(s, S, &m), RINGCAST_OK);
  EXPECT_TRUE(m.seq == 0 && m.len == 6 && memcmp(m.data, "before", 6) == 0);
  EXPECT(ringcast_sample_release(s, &m), RINGCAST_OK);
  EXPECT(ringcast_subscriber_recv(s, S, &m), RINGCAST_OK);
  EXPECT_TRUE(m.seq == 1 && m.len == 5 && memcmp(m.data, "after", 5) == 0);
  EXPECT(ringcast_sample_release(s, &m), RINGCAST_OK);
  ringcast_subscriber *ready[2];
  size_t n = 0;
  EXPECT(ringcast_waitset_wait(ws, S, ready, 2, &n), RINGCAST_OK);
  EXPECT_TRUE(n == 1 && ready[0] == s2);
  /* The parent's subscribers still hold their table entries: a Block publisher with
   * both behind waits for the slower one (s2 has read nothing): 4 slots, 2 used, so two
   * more fit and a fifth does not. */
  EXPECT(ringcast_publisher_send(p, "3", 1, &seq), RINGCAST_OK);
  EXPECT(ringcast_publisher_send(p, "4", 1, &seq), RINGCAST_OK);
  ringcast_loan loan;
  EXPECT(ringcast_publisher_loan(p, 0, &loan), RINGCAST_FULL);
  EXPECT(ringcast_publisher_destroy(p2), RINGCAST_OK);

  /* The service answers the parent's client. */
  uint64_t call = 0;
  EXPECT(ringcast_client_send(c, "ping", 4, S, &call), RINGCAST_OK);
  ringcast_request req;
  EXPECT(ringcast_server_recv(srv, S, &req), RINGCAST_OK);
  EXPECT(ringcast_request_respond(srv, &req, "pong", 4), RINGCAST_OK);
  EXPECT(ringcast_client_recv(c, call, S, &m), RINGCAST_OK);
  EXPECT_TRUE(m.len == 4 && memcmp(m.data, "pong", 4) == 0);
  EXPECT(ringcast_response_release(c, &m), RINGCAST_OK);

out:
  if (c) ringcast_client_destroy(c);
  if (srv) ringcast_server_destroy(srv);
  if (ws) ringcast_waitset_destroy(ws);
  if (s2) ringcast_subscriber_destroy(s2);
  if (s) ringcast_subscriber_destroy(s);
  if (p) ringcast_publisher_destroy(p);
  printf("RESULT checks=%d failed=%d\n", checks, failed);
  return failed != 0;
}
