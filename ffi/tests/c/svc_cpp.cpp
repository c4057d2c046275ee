// The C++ service wrapper: a Server on a thread, a Client; calls, a stream, a deferred
// answer, a request dropped unanswered (ended, as in Rust), typed errors.
//   svc_cpp PREFIX SERVICE      prints "RESULT checks=N failed=F"
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>

#include "ringcast.hpp"

static int checks, failed;
#define CHECK(cond)                                                   \
  do {                                                                \
    checks++;                                                         \
    if (!(cond)) {                                                    \
      failed++;                                                       \
      std::fprintf(stderr, "line %d: %s is false\n", __LINE__, #cond); \
    }                                                                 \
  } while (0)

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  std::string prefix = argv[1], service = argv[2];
  try {
    ringcast::Client::connect(service, ringcast::ClientOptions().prefix(prefix));
    CHECK(false);
  } catch (const ringcast::Error& e) {
    CHECK(e.status() == RINGCAST_ERR_NO_SERVER);
  }
  auto server = ringcast::Server::create(service, ringcast::ServerConfig().prefix(prefix));
  try {
    ringcast::Server::create(service, ringcast::ServerConfig().prefix(prefix));
    CHECK(false);
  } catch (const ringcast::Error& e) {
    CHECK(e.status() == RINGCAST_ERR_ALREADY_SERVED);
  }
  std::thread serving([&] {
    ringcast_request deferred{};
    bool have_deferred = false;
    for (;;) {
      ringcast::Request req = server.recv(30s);
      if (!req) return;
      std::string text(req.view());
      if (text == "quit") { req.respond("bye"); return; }
      if (text == "drop") continue;  // goes out of scope unanswered: ended
      if (text == "stream") {
        for (int i = 0; i < 3; i++) req.respond_part(std::to_string(i));
        req.end();
      } else if (text == "later") {
        deferred = req.defer();
        have_deferred = true;
      } else {
        req.respond("re:" + text);
        if (have_deferred) { server.respond(deferred, "deferred"); have_deferred = false; }
      }
    }
  });
  auto client = ringcast::Client::connect(service, ringcast::ClientOptions().prefix(prefix), 5s);
  {
    auto r = client.call("one", 10s);
    CHECK(r && r.view() == "re:one");
  }
  uint64_t call = client.send("stream", 10s);
  CHECK(call != 0);
  for (int i = 0; i < 3; i++) {
    auto r = client.recv(call, 10s);
    CHECK(r && r.view() == std::to_string(i) && r.call() == call);
  }
  CHECK(client.recv(call, 10s).status() == RINGCAST_ENDED);
  try {
    client.call("drop", 10s);
    CHECK(false);
  } catch (const ringcast::Error& e) {
    CHECK(e.status() == RINGCAST_ERR_NO_RESPONSE);
  }
  uint64_t later = client.send("later", 10s);
  {
    auto now = client.call("now", 10s);
    CHECK(now && now.view() == "re:now");
  }
  {
    auto r = client.recv(later, 10s);
    CHECK(r && r.view() == "deferred");
  }
  {
    auto bye = client.call("quit", 10s);
    CHECK(bye && bye.view() == "bye");
  }
  serving.join();
  server = ringcast::Server::create(service + "-2", ringcast::ServerConfig().prefix(prefix));
  // The first server is gone (moved-over: destroyed): its client sees it.
  auto gone = client.call("anyone?", 10s);
  CHECK(!gone && gone.status() == RINGCAST_DISCONNECTED);
  {
    // A WaitSet with a server and a client of it: a greeting wakes no one (the notifier
    // does), a request makes the server ready, its response the client.
    ringcast::WaitSet ws;
    ws.add(server);
    try {
      ws.add(server);
      CHECK(false);
    } catch (const ringcast::Error& e) {
      CHECK(e.status() == RINGCAST_ERR_WAITSET);
    }
    auto notifier = ws.notifier();
    std::optional<ringcast::Client> c2;
    std::thread connecting([&] {
      c2.emplace(ringcast::Client::connect(service + "-2",
                                           ringcast::ClientOptions().prefix(prefix), 5s));
      notifier.notify();
    });
    CHECK(ws.wait(10s) == RINGCAST_NOTIFIED && !ws.is_ready(server));
    connecting.join();
    CHECK(c2.has_value());
    if (c2) {
      ws.add(*c2);
      uint64_t id = c2->send("ws", 5s);
      CHECK(ws.wait(5s) == RINGCAST_OK && ws.is_ready(server) && !ws.is_ready(*c2));
      {
        auto req = server.try_recv();
        CHECK(req && req.view() == "ws");
        if (req) req.respond("re:ws");
      }
      CHECK(ws.wait(5s) == RINGCAST_OK && ws.is_ready(*c2) && !ws.is_ready(server));
      {
        auto r = c2->recv(id, 0s);
        CHECK(r && r.view() == "re:ws");
      }
      CHECK(ws.wait(50ms) == RINGCAST_TIMEOUT);
      ws.remove(*c2);
    }
    ws.remove(server);
  }
  std::printf("RESULT checks=%d failed=%d\n", checks, failed);
  return failed ? 1 : 0;
}
