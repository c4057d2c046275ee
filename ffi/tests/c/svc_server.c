/* A C server:  svc_server PREFIX SERVICE
 * Prints "SERVING", then answers requests until "quit" (answered "bye"):
 *   "stream N"  N parts "part I", then the end;
 *   "end"       the end, no response;
 *   "hang"      released, never answered (the caller's client waits);
 *   "late"      deferred: answered "late" after the next request is answered;
 *   "loan N"    answered in place (ringcast_request_loan / _commit): "loaned:" and N
 *               'x', after checking that a loan blocks other responses to the client;
 *   anything    "echo:" + the request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast.h"

static int fail(const char *what, ringcast_status st) {
  fprintf(stderr, "svc_server: %s: %s (%s)\n", what, ringcast_status_str(st), ringcast_last_error());
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  ringcast_server_config cfg;
  ringcast_server_config_init(&cfg);
  cfg.prefix = argv[1];
  cfg.max_response = 256;
  ringcast_server *s = NULL;
  ringcast_status st = ringcast_server_create(argv[2], &cfg, &s);
  if (st != RINGCAST_OK) return fail("create", st);
  printf("SERVING\n");
  fflush(stdout);
  ringcast_request late;
  int have_late = 0;
  for (;;) {
    ringcast_request req;
    st = ringcast_server_recv(s, 60000000000LL, &req);
    if (st == RINGCAST_TIMEOUT) continue;
    if (st != RINGCAST_OK) return fail("recv", st);
    char text[300];
    size_t n = req.len < sizeof text - 1 ? req.len : sizeof text - 1;
    memcpy(text, req.data, n);
    text[n] = 0;
    if (strcmp(text, "quit") == 0) {
      if ((st = ringcast_request_respond(s, &req, "bye", 3)) != RINGCAST_OK) return fail("bye", st);
      break;
    } else if (strncmp(text, "stream ", 7) == 0) {
      int parts = atoi(text + 7);
      for (int i = 0; i < parts; i++) {
        char part[32];
        int len = snprintf(part, sizeof part, "part %d", i);
        if ((st = ringcast_request_respond_part(s, &req, part, (size_t)len)) != RINGCAST_OK)
          return fail("part", st);
      }
      if ((st = ringcast_request_end(s, &req)) != RINGCAST_OK) return fail("end", st);
    } else if (strncmp(text, "loan ", 5) == 0) {
      int n = atoi(text + 5);
      void *data = NULL;
      size_t cap = 0;
      if ((st = ringcast_request_commit(s, &req, 0, 1)) != RINGCAST_ERR_NOT_HELD)
        return fail("commit before loan", st);
      if ((st = ringcast_request_loan(s, &req, &data, &cap)) != RINGCAST_OK) return fail("loan", st);
      if (cap != 256 || n < 0 || (size_t)n + 7 > cap) return fail("loan capacity", RINGCAST_ERR_TOO_LARGE);
      memcpy(data, "loaned:", 7);
      memset((char *)data + 7, 'x', (size_t)n);
      /* The client's one slot in writing is this request's: any other response waits. */
      ringcast_request other = req;
      other.id += 1000;
      if ((st = ringcast_request_respond(s, &other, "no", 2)) != RINGCAST_ERR_LOAN_OUTSTANDING)
        return fail("respond while loaned", st);
      if ((st = ringcast_request_loan(s, &other, &data, &cap)) != RINGCAST_ERR_LOAN_OUTSTANDING)
        return fail("second loan", st);
      /* Too long: refused, the loan stays. */
      if ((st = ringcast_request_commit(s, &req, cap + 1, 1)) != RINGCAST_ERR_TOO_LARGE)
        return fail("commit too long", st);
      if ((st = ringcast_request_commit(s, &req, 7 + (size_t)n, 1)) != RINGCAST_OK) return fail("commit", st);
      if (req.data != NULL) return fail("commit left the request held", RINGCAST_ERR_IO);
    } else if (strcmp(text, "end") == 0) {
      if ((st = ringcast_request_end(s, &req)) != RINGCAST_OK) return fail("end", st);
    } else if (strcmp(text, "hang") == 0) {
      if ((st = ringcast_request_release(s, &req)) != RINGCAST_OK) return fail("release", st);
      printf("HANGING\n");
      fflush(stdout);
    } else if (strcmp(text, "late") == 0) {
      if ((st = ringcast_request_release(s, &req)) != RINGCAST_OK) return fail("release", st);
      late = req;
      have_late = 1;
    } else {
      char out[300] = "echo:";
      memcpy(out + 5, req.data, req.len > 250 ? 250 : req.len);
      if ((st = ringcast_request_respond(s, &req, out, 5 + (req.len > 250 ? 250 : req.len))) != RINGCAST_OK)
        return fail("respond", st);
      if (have_late) {
        if ((st = ringcast_request_respond(s, &late, "late", 4)) != RINGCAST_OK) return fail("late", st);
        have_late = 0;
      }
    }
  }
  return ringcast_server_destroy(s) == RINGCAST_OK ? 0 : 1;
}
