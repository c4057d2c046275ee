/* The service entry points with bad arguments: a status code, never a crash. Built with
 * -fsanitize=address,undefined where the compiler has them.
 *   svc_checks PREFIX SERVICE   (a server of SERVICE runs on a thread here)
 * Prints "RESULT checks=N failed=F". */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "ringcast.h"

static const long long S = 1000000000LL;

/* Serves until "quit": echoes each request, but gives up on "fail". */
static void *serve(void *arg) {
  ringcast_server *s = arg;
  for (;;) {
    ringcast_request req;
    ringcast_status st = ringcast_server_recv(s, 30 * S, &req);
    if (st != RINGCAST_OK) return NULL;
    int quit = req.len == 4 && memcmp(req.data, "quit", 4) == 0;
    if (req.len == 4 && memcmp(req.data, "fail", 4) == 0) {
      ringcast_request_fail(s, &req);
      continue;
    }
    ringcast_request_respond(s, &req, req.data, req.len);
    if (quit) return NULL;
  }
}

/* Connects to a service and calls it once ("hi"), on a thread. */
struct connecting {
  const char *prefix, *service;
  ringcast_client *c;
  ringcast_status st;
};

static void *connect_and_call(void *arg) {
  struct connecting *k = arg;
  ringcast_client_options o;
  ringcast_client_options_init(&o);
  o.prefix = k->prefix;
  k->st = ringcast_client_connect(k->service, &o, 5 * S, &k->c);
  if (k->st != RINGCAST_OK) return NULL;
  ringcast_sample r;
  k->st = ringcast_client_call(k->c, "hi", 2, 5 * S, &r);
  if (k->st == RINGCAST_OK) k->st = ringcast_response_release(k->c, &r);
  return NULL;
}

/* Waits on `ws` until `server` is reported ready (or 5 s pass): whether it was. */
static int server_ready(ringcast_waitset *ws, ringcast_server *server) {
  ringcast_member m[4];
  size_t n = 0;
  for (int i = 0; i < 50; i++) {
    ringcast_status st = ringcast_waitset_wait_members(ws, 100000000LL, m, 4, &n);
    if (st != RINGCAST_OK && st != RINGCAST_TIMEOUT) return 0;
    for (size_t j = 0; j < n; j++)
      if (m[j].kind == RINGCAST_MEMBER_SERVER && m[j].server == server) return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  const char *prefix = argv[1], *service = argv[2];
  ringcast_server_config cfg;
  ringcast_client_options opts;
  ringcast_server *s = NULL, *s2 = NULL;
  ringcast_client *c = NULL, *c2 = NULL;
  ringcast_request req;
  ringcast_sample r;
  uint64_t call = 0;
  size_t n = 0;

  /* Statuses. */
  EXPECT_TRUE(RINGCAST_ENDED == 8);
  EXPECT_TRUE(RINGCAST_ERR_NO_SERVER == -25 && RINGCAST_ERR_UNKNOWN_CALL == -32);
  EXPECT_TRUE(RINGCAST_ERR_PUBLISHERS_FULL == -24); /* existing codes unchanged */
  EXPECT_TRUE(strcmp(ringcast_status_str(RINGCAST_ERR_CLIENT_GONE), "unknown status") != 0);
  EXPECT_TRUE(strcmp(ringcast_status_str(RINGCAST_ENDED), "unknown status") != 0);

  /* Init and NULLs. */
  EXPECT(ringcast_server_config_init(NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_client_options_init(NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_server_config_init(&cfg), RINGCAST_OK);
  EXPECT(ringcast_client_options_init(&opts), RINGCAST_OK);
  cfg.prefix = prefix;
  opts.prefix = prefix;
  s = (ringcast_server *)&cfg; /* must be cleared on failure */
  EXPECT(ringcast_server_create(NULL, &cfg, &s), RINGCAST_ERR_NULL);
  EXPECT_TRUE(s == NULL);
  EXPECT(ringcast_server_create(service, &cfg, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_client_connect(NULL, &opts, 0, &c), RINGCAST_ERR_NULL);
  EXPECT(ringcast_client_connect(service, &opts, 0, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_server_recv(NULL, 0, &req), RINGCAST_ERR_NULL);
  EXPECT(ringcast_request_respond(NULL, &req, "x", 1), RINGCAST_ERR_NULL);
  EXPECT(ringcast_request_respond_part(NULL, &req, "x", 1), RINGCAST_ERR_NULL);
  EXPECT(ringcast_request_end(NULL, &req), RINGCAST_ERR_NULL);
  EXPECT(ringcast_request_release(NULL, &req), RINGCAST_ERR_NULL);
  EXPECT(ringcast_server_clients(NULL, &n), RINGCAST_ERR_NULL);
  EXPECT(ringcast_client_call(NULL, "x", 1, 0, &r), RINGCAST_ERR_NULL);
  EXPECT(ringcast_client_send(NULL, "x", 1, 0, &call), RINGCAST_ERR_NULL);
  EXPECT(ringcast_client_recv(NULL, 1, 0, &r), RINGCAST_ERR_NULL);
  EXPECT(ringcast_response_release(NULL, &r), RINGCAST_ERR_NULL);
  EXPECT(ringcast_client_max_request(NULL, &n), RINGCAST_ERR_NULL);
  EXPECT(ringcast_server_destroy(NULL), RINGCAST_OK);
  EXPECT(ringcast_client_destroy(NULL), RINGCAST_OK);

  /* Bad names, versions, configs. */
  EXPECT(ringcast_server_create("", &cfg, &s), RINGCAST_ERR_NAME);
  EXPECT(ringcast_server_create("a/b", &cfg, &s), RINGCAST_ERR_NAME);
  EXPECT(ringcast_server_create("\xff\xfe", &cfg, &s), RINGCAST_ERR_INVALID_ARGUMENT);
  EXPECT(ringcast_client_connect("a/b", &opts, 0, &c), RINGCAST_ERR_NAME);
  ringcast_server_config bad = cfg;
  bad.struct_size = 12;
  EXPECT(ringcast_server_create(service, &bad, &s), RINGCAST_ERR_VERSION);
  bad = cfg;
  bad.wait = 99;
  EXPECT(ringcast_server_create(service, &bad, &s), RINGCAST_ERR_INVALID_ARGUMENT);
  bad = cfg;
  bad.queue = 3;
  EXPECT(ringcast_server_create(service, &bad, &s), RINGCAST_ERR_CONFIG);
  bad = cfg;
  bad.queue = 32;
  bad.response_slots = 16;
  EXPECT(ringcast_server_create(service, &bad, &s), RINGCAST_ERR_CONFIG);
  ringcast_client_options bado = opts;
  bado.struct_size = 0;
  EXPECT(ringcast_client_connect(service, &bado, 0, &c), RINGCAST_ERR_VERSION);
  /* No server. */
  EXPECT(ringcast_client_connect(service, &opts, 0, &c), RINGCAST_ERR_NO_SERVER);
  EXPECT(ringcast_client_connect(service, &opts, 50000000, &c), RINGCAST_ERR_NO_SERVER);
  EXPECT_TRUE(c == NULL);

  /* A server; a second one of the name is refused. */
  cfg.max_clients = 1;
  EXPECT(ringcast_server_create(service, &cfg, &s), RINGCAST_OK);
  EXPECT(ringcast_server_create(service, &cfg, &s2), RINGCAST_ERR_ALREADY_SERVED);
  EXPECT_TRUE(s2 == NULL);
  EXPECT(ringcast_server_recv(s, 0, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_server_recv(s, 0, &req), RINGCAST_TIMEOUT);
  EXPECT(ringcast_server_recv(s, 1000000, &req), RINGCAST_TIMEOUT);
  memset(&req, 0, sizeof req);
  EXPECT(ringcast_request_release(s, &req), RINGCAST_ERR_NOT_HELD);
  EXPECT(ringcast_request_release(s, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_request_respond(s, NULL, "x", 1), RINGCAST_ERR_NULL);
  EXPECT(ringcast_request_respond(s, &req, NULL, 1), RINGCAST_ERR_NULL);
  /* A request naming no client: typed, not a crash. */
  req.client_lane = 7;
  req.client_writer = 3;
  req.id = 1;
  EXPECT(ringcast_request_respond(s, &req, "x", 1), RINGCAST_ERR_CLIENT_GONE);
  EXPECT(ringcast_request_respond_part(s, &req, "x", 1), RINGCAST_ERR_CLIENT_GONE);
  EXPECT(ringcast_request_end(s, &req), RINGCAST_ERR_CLIENT_GONE);
  EXPECT(ringcast_server_clients(s, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_server_clients(s, &n), RINGCAST_OK);
  EXPECT_TRUE(n == 0);

  /* A client, served by a thread. */
  pthread_t t;
  EXPECT_TRUE(pthread_create(&t, NULL, serve, s) == 0);
  EXPECT(ringcast_client_connect(service, &opts, 5 * S, &c), RINGCAST_OK);
  /* max_clients 1: a second client is refused. */
  EXPECT(ringcast_client_connect(service, &opts, 5 * S, &c2), RINGCAST_ERR_TOO_MANY_CLIENTS);
  EXPECT_TRUE(c2 == NULL);
  EXPECT(ringcast_client_call(c, "x", 1, 5 * S, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_client_call(c, NULL, 1, 5 * S, &r), RINGCAST_ERR_NULL);
  EXPECT(ringcast_client_call(c, "x", (size_t)-1, 5 * S, &r), RINGCAST_ERR_INVALID_ARGUMENT);
  EXPECT(ringcast_client_send(c, "x", 1, 5 * S, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_client_recv(c, 1, 0, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_client_recv(c, 0, 0, &r), RINGCAST_ERR_UNKNOWN_CALL);
  EXPECT(ringcast_client_recv(c, 12345, 0, &r), RINGCAST_ERR_UNKNOWN_CALL);
  EXPECT(ringcast_client_max_request(c, NULL), RINGCAST_ERR_NULL);
  /* A request the server gives up on fails its call at once, by call and by recv. */
  EXPECT(ringcast_client_call(c, "fail", 4, 5 * S, &r), RINGCAST_ERR_CALL_FAILED);
  EXPECT(ringcast_client_send(c, "fail", 4, 5 * S, &call), RINGCAST_OK);
  EXPECT(ringcast_client_recv(c, call, 5 * S, &r), RINGCAST_ERR_CALL_FAILED);
  EXPECT(ringcast_client_recv(c, call, 0, &r), RINGCAST_ENDED);
  EXPECT(ringcast_request_fail(NULL, &req), RINGCAST_ERR_NULL);
  EXPECT(ringcast_client_call(c, "ping", 4, 5 * S, &r), RINGCAST_OK);
  EXPECT_TRUE(r.len == 4 && memcmp(r.data, "ping", 4) == 0);
  ringcast_sample fake = r;
  fake.seq += 1;
  EXPECT(ringcast_response_release(c, &fake), RINGCAST_ERR_NOT_HELD);
  EXPECT(ringcast_response_release(c, NULL), RINGCAST_ERR_NULL);
  EXPECT(ringcast_client_call(c, "quit", 4, 5 * S, &r), RINGCAST_ERR_SAMPLE_OUTSTANDING);
  EXPECT(ringcast_response_release(c, &r), RINGCAST_OK);
  EXPECT(ringcast_client_call(c, "quit", 4, 5 * S, &r), RINGCAST_OK);
  /* Destroyed holding a response: released, and said so. */
  EXPECT(ringcast_client_destroy(c), RINGCAST_ABANDONED);
  pthread_join(t, NULL);

  /* Servers and clients in wait sets. */
  {
    ringcast_waitset *ws = NULL, *ws2 = NULL;
    ringcast_server *s3 = NULL;
    ringcast_member m[4];
    ringcast_subscriber *rs[2];
    char service2[128];
    snprintf(service2, sizeof service2, "%s-ws", service);
    EXPECT(ringcast_waitset_create(0, &ws), RINGCAST_OK);
    EXPECT(ringcast_waitset_create(0, &ws2), RINGCAST_OK);
    EXPECT(ringcast_waitset_add_server(NULL, s), RINGCAST_ERR_NULL);
    EXPECT(ringcast_waitset_add_server(ws, NULL), RINGCAST_ERR_NULL);
    EXPECT(ringcast_waitset_remove_server(NULL, s), RINGCAST_ERR_NULL);
    EXPECT(ringcast_waitset_remove_server(ws, NULL), RINGCAST_ERR_NULL);
    EXPECT(ringcast_waitset_add_client(NULL, NULL), RINGCAST_ERR_NULL);
    EXPECT(ringcast_waitset_add_client(ws, NULL), RINGCAST_ERR_NULL);
    EXPECT(ringcast_waitset_remove_client(ws, NULL), RINGCAST_ERR_NULL);
    EXPECT(ringcast_waitset_wait_members(NULL, 0, m, 4, &n), RINGCAST_ERR_NULL);
    EXPECT(ringcast_waitset_wait_members(ws, 0, NULL, 4, &n), RINGCAST_ERR_NULL);
    EXPECT(ringcast_waitset_wait_members(ws, 0, m, 4, NULL), RINGCAST_ERR_NULL);
    /* Empty, no notifier: it would wait for ever. */
    EXPECT(ringcast_waitset_wait_members(ws, -1, m, 4, &n), RINGCAST_ERR_WAITSET);
    /* Not a member; a member of one set only. */
    EXPECT(ringcast_waitset_remove_server(ws, s), RINGCAST_ERR_WAITSET);
    EXPECT(ringcast_waitset_add_server(ws, s), RINGCAST_OK);
    EXPECT(ringcast_waitset_add_server(ws, s), RINGCAST_ERR_WAITSET);
    EXPECT(ringcast_waitset_add_server(ws2, s), RINGCAST_ERR_WAITSET);
    EXPECT(ringcast_waitset_remove_server(ws2, s), RINGCAST_ERR_WAITSET);
    /* The subscriber-only wait refuses a set with a server. */
    EXPECT(ringcast_waitset_wait(ws, 0, rs, 2, &n), RINGCAST_ERR_WAITSET);
    n = 9;
    EXPECT(ringcast_waitset_wait_members(ws, 0, m, 4, &n), RINGCAST_TIMEOUT);
    EXPECT_TRUE(n == 0);
    EXPECT(ringcast_waitset_wait_members(ws, 0, NULL, 0, &n), RINGCAST_TIMEOUT);
    /* The handle works while in the set. */
    EXPECT(ringcast_server_recv(s, 0, &req), RINGCAST_TIMEOUT);
    EXPECT(ringcast_server_clients(s, &n), RINGCAST_OK);

    /* A second server in the set; a client connects and calls it from a thread. */
    EXPECT(ringcast_server_create(service2, &cfg, &s3), RINGCAST_OK);
    EXPECT(ringcast_waitset_add_server(ws, s3), RINGCAST_OK);
    struct connecting k = {prefix, service2, NULL, RINGCAST_ERR_IO};
    EXPECT_TRUE(pthread_create(&t, NULL, connect_and_call, &k) == 0);
    EXPECT_TRUE(server_ready(ws, s3));
    EXPECT(ringcast_server_recv(s3, 0, &req), RINGCAST_OK);
    EXPECT_TRUE(req.len == 2 && memcmp(req.data, "hi", 2) == 0);
    /* Holding a request: no wait, and not in another set. */
    EXPECT(ringcast_waitset_wait_members(ws, 0, m, 4, &n), RINGCAST_ERR_SAMPLE_OUTSTANDING);
    EXPECT(ringcast_waitset_remove_server(ws, s3), RINGCAST_OK);
    EXPECT(ringcast_waitset_add_server(ws2, s3), RINGCAST_ERR_SAMPLE_OUTSTANDING);
    EXPECT(ringcast_waitset_add_server(ws, s3), RINGCAST_ERR_SAMPLE_OUTSTANDING);
    EXPECT(ringcast_request_respond(s3, &req, "hi", 2), RINGCAST_OK);
    EXPECT(ringcast_waitset_add_server(ws, s3), RINGCAST_OK);
    pthread_join(t, NULL);
    EXPECT(k.st, RINGCAST_OK);
    ringcast_client *c3 = k.c;
    EXPECT_TRUE(c3 != NULL);

    /* The client (now this thread's): holding a response, it cannot join. */
    EXPECT(ringcast_client_send(c3, "x", 1, 5 * S, &call), RINGCAST_OK);
    EXPECT_TRUE(server_ready(ws, s3));
    EXPECT(ringcast_server_recv(s3, 0, &req), RINGCAST_OK);
    EXPECT(ringcast_request_respond(s3, &req, "y", 1), RINGCAST_OK);
    EXPECT(ringcast_client_recv(c3, call, 5 * S, &r), RINGCAST_OK);
    EXPECT(ringcast_waitset_add_client(ws, c3), RINGCAST_ERR_SAMPLE_OUTSTANDING);
    EXPECT(ringcast_response_release(c3, &r), RINGCAST_OK);
    EXPECT(ringcast_waitset_remove_client(ws, c3), RINGCAST_ERR_WAITSET);
    EXPECT(ringcast_waitset_add_client(ws, c3), RINGCAST_OK);
    EXPECT(ringcast_waitset_add_client(ws, c3), RINGCAST_ERR_WAITSET);
    EXPECT(ringcast_waitset_add_client(ws2, c3), RINGCAST_ERR_WAITSET);
    EXPECT(ringcast_waitset_remove_client(ws2, c3), RINGCAST_ERR_WAITSET);
    EXPECT(ringcast_client_max_request(c3, &n), RINGCAST_OK);

    /* A server destroyed in the set leaves it: the set never reports it again. */
    EXPECT(ringcast_server_destroy(s3), RINGCAST_OK);
    ringcast_status st = ringcast_waitset_wait_members(ws, 0, m, 4, &n);
    EXPECT_TRUE(st == RINGCAST_OK || st == RINGCAST_TIMEOUT);
    for (size_t j = 0; j < n; j++) EXPECT_TRUE(m[j].kind == RINGCAST_MEMBER_CLIENT && m[j].client == c3);
    /* A client destroyed in the set leaves it too. */
    EXPECT(ringcast_client_destroy(c3), RINGCAST_OK);
    EXPECT(ringcast_waitset_wait_members(ws, 0, m, 4, &n), RINGCAST_TIMEOUT);
    EXPECT_TRUE(n == 0);
    /* Destroying the set gives `s` back: usable, in no set. */
    EXPECT(ringcast_waitset_destroy(ws), RINGCAST_OK);
    EXPECT(ringcast_server_recv(s, 0, &req), RINGCAST_TIMEOUT);
    EXPECT(ringcast_waitset_remove_server(ws2, s), RINGCAST_ERR_WAITSET);
    EXPECT(ringcast_waitset_add_server(ws2, s), RINGCAST_OK);
    EXPECT(ringcast_server_destroy(s), RINGCAST_OK);
    s = NULL;
    EXPECT(ringcast_waitset_wait_members(ws2, 0, m, 4, &n), RINGCAST_TIMEOUT);
    EXPECT_TRUE(n == 0);
    EXPECT(ringcast_waitset_destroy(ws2), RINGCAST_OK);
  }

  /* A request the wait received (kept for the next ringcast_server_recv) survives the
   * set's destruction and the server's removal, and dies cleanly with the server. */
  {
    ringcast_waitset *ws = NULL;
    ringcast_server *s4 = NULL;
    ringcast_member m[4];
    char service3[128];
    snprintf(service3, sizeof service3, "%s-kept", service);
    EXPECT(ringcast_server_create(service3, &cfg, &s4), RINGCAST_OK);
    EXPECT(ringcast_waitset_create(0, &ws), RINGCAST_OK);
    EXPECT(ringcast_waitset_add_server(ws, s4), RINGCAST_OK);
    struct connecting k = {prefix, service3, NULL, RINGCAST_ERR_IO};
    EXPECT_TRUE(pthread_create(&t, NULL, connect_and_call, &k) == 0);
    EXPECT_TRUE(server_ready(ws, s4));
    EXPECT(ringcast_waitset_destroy(ws), RINGCAST_OK); /* s4 back, its request with it */
    EXPECT(ringcast_server_recv(s4, 0, &req), RINGCAST_OK);
    EXPECT_TRUE(req.len == 2 && memcmp(req.data, "hi", 2) == 0);
    EXPECT(ringcast_request_respond(s4, &req, "hi", 2), RINGCAST_OK);
    pthread_join(t, NULL);
    EXPECT(k.st, RINGCAST_OK);
    ringcast_client *c4 = k.c;
    /* Taken out with remove_server: the request comes along. */
    EXPECT(ringcast_waitset_create(0, &ws), RINGCAST_OK);
    EXPECT(ringcast_waitset_add_server(ws, s4), RINGCAST_OK);
    EXPECT(ringcast_client_send(c4, "x", 1, 5 * S, &call), RINGCAST_OK);
    EXPECT_TRUE(server_ready(ws, s4));
    EXPECT(ringcast_waitset_remove_server(ws, s4), RINGCAST_OK);
    EXPECT(ringcast_server_recv(s4, 0, &req), RINGCAST_OK);
    EXPECT_TRUE(req.len == 1 && ((const char *)req.data)[0] == 'x');
    EXPECT(ringcast_request_respond(s4, &req, "y", 1), RINGCAST_OK);
    EXPECT(ringcast_client_recv(c4, call, 5 * S, &r), RINGCAST_OK);
    EXPECT_TRUE(r.len == 1 && ((const char *)r.data)[0] == 'y');
    EXPECT(ringcast_response_release(c4, &r), RINGCAST_OK);
    /* Destroyed in the set with a received request pending: clean, and its client's
     * call ends (the server is gone). */
    EXPECT(ringcast_waitset_add_server(ws, s4), RINGCAST_OK);
    EXPECT(ringcast_client_send(c4, "z", 1, 5 * S, &call), RINGCAST_OK);
    EXPECT_TRUE(server_ready(ws, s4));
    ringcast_status gone = ringcast_server_destroy(s4);
    EXPECT_TRUE(gone == RINGCAST_OK || gone == RINGCAST_ABANDONED);
    EXPECT(ringcast_waitset_wait_members(ws, 0, m, 4, &n), RINGCAST_TIMEOUT); /* empty */
    EXPECT_TRUE(n == 0);
    EXPECT(ringcast_client_recv(c4, call, 5 * S, &r), RINGCAST_DISCONNECTED);
    EXPECT(ringcast_client_destroy(c4), RINGCAST_OK);
    EXPECT(ringcast_waitset_destroy(ws), RINGCAST_OK);
  }

  EXPECT(ringcast_server_destroy(s), RINGCAST_OK);
  printf("RESULT checks=%d failed=%d\n", checks, failed);
  return failed ? 1 : 0;
}
