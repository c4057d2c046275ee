/* A service's mode and a client's trust through the C ABI. Run as root: it gives the
 * service's name plate to another user, as if that user had squatted it.
 *   svc_trust PREFIX SERVICE UID
 * Prints "RESULT checks=N failed=F". */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ringcast.h"

static const long long S = 1000000000LL;

/* Serves until "quit": echoes each request. */
static void *serve(void *arg) {
  ringcast_server *s = arg;
  for (;;) {
    ringcast_request req;
    ringcast_status st = ringcast_server_recv(s, 30 * S, &req);
    if (st != RINGCAST_OK) return NULL;
    int quit = req.len == 4 && memcmp(req.data, "quit", 4) == 0;
    ringcast_request_respond(s, &req, req.data, req.len);
    if (quit) return NULL;
  }
}

static unsigned mode_of(const char *prefix, const char *service, const char *suffix) {
  char path[512];
  struct stat st;
  snprintf(path, sizeof path, "/dev/shm/%s.%s%s", prefix, service, suffix);
  return stat(path, &st) == 0 ? (unsigned)(st.st_mode & 0777) : 0;
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  const char *prefix = argv[1], *service = argv[2];
  uint32_t uid = (uint32_t)strtoul(argv[3], NULL, 10);
  char want[64], plate[512];
  ringcast_server_config cfg;
  ringcast_client_options opts;
  ringcast_server *s = NULL;
  ringcast_client *c = NULL;
  ringcast_sample r;
  pthread_t t;
  snprintf(want, sizeof want, "uid %u", uid);
  snprintf(plate, sizeof plate, "/dev/shm/%s.%s..service", prefix, service);

  EXPECT(ringcast_server_config_init(&cfg), RINGCAST_OK);
  EXPECT_TRUE(cfg.mode == 0600);
  EXPECT(ringcast_client_options_init(&opts), RINGCAST_OK);
  EXPECT_TRUE(opts.trust_users == NULL && opts.trust_users_len == 0 && opts.trust_any_owner == 0);
  cfg.prefix = prefix;
  opts.prefix = prefix;
  /* Modes beyond rw, or without the server's own rw, are refused. */
  cfg.mode = 0700;
  EXPECT(ringcast_server_create(service, &cfg, &s), RINGCAST_ERR_CONFIG);
  cfg.mode = 0066;
  EXPECT(ringcast_server_create(service, &cfg, &s), RINGCAST_ERR_CONFIG);
  /* Every local user may call: the topics get the mode, the plate its read bits. */
  cfg.mode = 0666;
  EXPECT(ringcast_server_create(service, &cfg, &s), RINGCAST_OK);
  EXPECT_TRUE(mode_of(prefix, service, "..requests") == 0666);
  EXPECT_TRUE(mode_of(prefix, service, "..service") == 0644);
  if (s == NULL) return 1;
  pthread_create(&t, NULL, serve, s);
  /* The plate now belongs to another user: refused, naming the owner, not waited out. */
  EXPECT_TRUE(chown(plate, uid, uid) == 0);
  EXPECT(ringcast_client_connect(service, &opts, S / 5, &c), RINGCAST_ERR_UNTRUSTED);
  EXPECT_TRUE(c == NULL && strstr(ringcast_last_error(), want) != NULL);
  /* A list without its array is an error, not a crash. */
  opts.trust_users_len = 1;
  EXPECT(ringcast_client_connect(service, &opts, 0, &c), RINGCAST_ERR_NULL);
  /* Trusted by user id (by group, by any owner): connected, and it answers. */
  opts.trust_users = &uid;
  EXPECT(ringcast_client_connect(service, &opts, 5 * S, &c), RINGCAST_OK);
  EXPECT(ringcast_client_call(c, "hi", 2, 5 * S, &r), RINGCAST_OK);
  EXPECT_TRUE(r.len == 2 && memcmp(r.data, "hi", 2) == 0);
  EXPECT(ringcast_response_release(c, &r), RINGCAST_OK);
  EXPECT(ringcast_client_destroy(c), RINGCAST_OK);
  opts.trust_users = NULL;
  opts.trust_users_len = 0;
  opts.trust_groups = &uid;
  opts.trust_groups_len = 1;
  EXPECT(ringcast_client_connect(service, &opts, 5 * S, &c), RINGCAST_OK);
  EXPECT(ringcast_client_destroy(c), RINGCAST_OK);
  opts.trust_groups = NULL;
  opts.trust_groups_len = 0;
  opts.trust_any_owner = 1;
  EXPECT(ringcast_client_connect(service, &opts, 5 * S, &c), RINGCAST_OK);
  EXPECT(ringcast_client_call(c, "quit", 4, 5 * S, &r), RINGCAST_OK);
  EXPECT(ringcast_response_release(c, &r), RINGCAST_OK);
  EXPECT(ringcast_client_destroy(c), RINGCAST_OK);
  pthread_join(t, NULL);
  EXPECT(ringcast_server_destroy(s), RINGCAST_OK);
  printf("RESULT checks=%d failed=%d\n", checks, failed);
  return failed == 0 ? 0 : 1;
}
