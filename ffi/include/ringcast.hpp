// ringcast.hpp: a header-only C++17 RAII wrapper over ringcast.h.
//
// Errors (negative statuses) throw ringcast::Error, which carries the status and the
// message of ringcast_last_error(). Outcomes a loop acts on are values, not exceptions:
// a receive returns a Sample that is empty on a timeout or at the end of the topic
// (Sample::status() says which), a loan that does not get a slot in time is empty.
// Handles are move-only; a Sample releases its slot and a Loan is aborted when they go
// out of scope (commit() publishes it). A Sample or Loan must not outlive its
// Subscriber or Publisher. As in C, a handle is used by one thread at a time.
#ifndef RINGCAST_HPP
#define RINGCAST_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ringcast.h"

namespace ringcast {

/// A failed call: the status and what ringcast_last_error() said.
class Error : public std::runtime_error {
 public:
  Error(ringcast_status status, const std::string& what)
      : std::runtime_error(what), status_(status) {}
  ringcast_status status() const noexcept { return status_; }

 private:
  ringcast_status status_;
};

namespace detail {
/// Throws on an error status; returns outcomes (>= 0) to the caller.
inline ringcast_status check(ringcast_status s) {
  if (s < 0) {
    std::string what = ringcast_last_error();
    if (what.empty()) what = ringcast_status_str(s);
    throw Error(s, what);
  }
  return s;
}
/// A timeout in nanoseconds for the C API (negative: for ever).
inline int64_t ns(std::chrono::nanoseconds t) { return static_cast<int64_t>(t.count()); }
}  // namespace detail

/// Wait for ever.
inline constexpr std::chrono::nanoseconds forever{-1};

/// Topic configuration: defaults from the library, chainable setters.
class PublisherConfig {
 public:
  PublisherConfig() { detail::check(ringcast_publisher_config_init(&c_)); }
  PublisherConfig& slots(uint64_t n) { c_.slots = n; return *this; }
  PublisherConfig& slot_size(uint64_t bytes) { c_.slot_size = bytes; return *this; }
  PublisherConfig& block() { c_.overflow = RINGCAST_OVERFLOW_BLOCK; return *this; }
  PublisherConfig& overwrite() { c_.overflow = RINGCAST_OVERFLOW_OVERWRITE; return *this; }
  PublisherConfig& max_subscribers(uint64_t n) { c_.max_subscribers = n; return *this; }
  /// Publishers the topic admits at once (default 1). With n > 1, a Publisher::create of
  /// the same topic with the same configuration joins it in a lane of its own.
  PublisherConfig& max_publishers(uint64_t n) { c_.max_publishers = n; return *this; }
  PublisherConfig& stall_timeout(std::chrono::nanoseconds t) {
    c_.stall_timeout_ns = static_cast<uint64_t>(t.count());
    return *this;
  }
  PublisherConfig& wait(uint32_t strategy) { c_.wait = strategy; return *this; }
  /// RINGCAST_MEMORY_* flags, or-ed.
  PublisherConfig& memory(uint32_t flags) { c_.memory = flags; return *this; }
  PublisherConfig& prefix(std::string p) { prefix_ = std::move(p); return *this; }
  /// The C struct (valid while this object lives and is not changed).
  const ringcast_publisher_config* get() {
    c_.prefix = prefix_.empty() ? nullptr : prefix_.c_str();
    return &c_;
  }

 private:
  ringcast_publisher_config c_{};
  std::string prefix_;
};

/// How to attach: defaults from the library, chainable setters.
class SubscriberOptions {
 public:
  SubscriberOptions() { detail::check(ringcast_subscriber_options_init(&c_)); }
  SubscriberOptions& oldest() { c_.start = RINGCAST_START_OLDEST; return *this; }
  SubscriberOptions& latest() { c_.start = RINGCAST_START_LATEST; return *this; }
  SubscriberOptions& wait(uint32_t strategy) { c_.wait = strategy; return *this; }
  SubscriberOptions& max_slot_size(uint64_t bytes) { c_.max_slot_size = bytes; return *this; }
  /// RINGCAST_MEMORY_PREFAULT and / or RINGCAST_MEMORY_LOCK.
  SubscriberOptions& memory(uint32_t flags) { c_.memory = flags; return *this; }
  SubscriberOptions& release_batch(uint64_t slots) { c_.release_batch = slots; return *this; }
  /// Attach as a monitor: never hold the publisher back (losses reported in `lost`).
  SubscriberOptions& monitor(bool on = true) { c_.monitor = on ? 1 : 0; return *this; }
  /// Also attach to topics of user `uid` (by default only this process's user and root).
  SubscriberOptions& trust_user(uint32_t uid) { users_.push_back(uid); return *this; }
  /// Also attach to topics whose segment file's group is `gid`.
  SubscriberOptions& trust_group(uint32_t gid) { groups_.push_back(gid); return *this; }
  /// Attach to topics of any owner.
  SubscriberOptions& trust_any_owner() { c_.trust_any_owner = 1; return *this; }
  SubscriberOptions& prefix(std::string p) { prefix_ = std::move(p); return *this; }
  const ringcast_subscriber_options* get() {
    c_.prefix = prefix_.empty() ? nullptr : prefix_.c_str();
    c_.trust_users = users_.empty() ? nullptr : users_.data();
    c_.trust_users_len = users_.size();
    c_.trust_groups = groups_.empty() ? nullptr : groups_.data();
    c_.trust_groups_len = groups_.size();
    return &c_;
  }

 private:
  ringcast_subscriber_options c_{};
  std::string prefix_;
  std::vector<uint32_t> users_, groups_;
};

/// A loaned slot: write into data() (up to capacity() bytes), then commit(len).
/// Aborted (nothing published) if it goes out of scope uncommitted.
class Loan {
 public:
  Loan() = default;
  Loan(Loan&& o) noexcept : p_(std::exchange(o.p_, nullptr)), l_(std::exchange(o.l_, {})) {}
  Loan& operator=(Loan&& o) noexcept {
    if (this != &o) {
      abort();
      p_ = std::exchange(o.p_, nullptr);
      l_ = std::exchange(o.l_, {});
    }
    return *this;
  }
  Loan(const Loan&) = delete;
  Loan& operator=(const Loan&) = delete;
  ~Loan() { abort(); }

  /// False if no slot was loaned (the ring stayed full within the timeout).
  explicit operator bool() const noexcept { return p_ != nullptr; }
  std::byte* data() const noexcept { return static_cast<std::byte*>(l_.data); }
  std::size_t capacity() const noexcept { return l_.capacity; }
  uint64_t seq() const noexcept { return l_.seq; }
  /// Publishes the first len bytes; returns the sequence number. Throws
  /// RINGCAST_ERR_NOT_HELD for a loan committed, aborted or moved from already.
  uint64_t commit(std::size_t len) {
    if (p_ == nullptr)
      throw Error(RINGCAST_ERR_NOT_HELD, "this loan was committed, aborted or moved from already");
    uint64_t seq = 0;
    detail::check(ringcast_loan_commit(p_, &l_, len, &seq));
    p_ = nullptr;
    return seq;
  }
  /// Abandons the loan (also done by the destructor).
  void abort() noexcept {
    if (p_ != nullptr) ringcast_loan_abort(std::exchange(p_, nullptr), &l_);
  }

 private:
  friend class Publisher;
  Loan(ringcast_publisher* p, ringcast_loan l) : p_(p), l_(l) {}
  ringcast_publisher* p_ = nullptr;
  ringcast_loan l_{};
};

/// A publisher of a topic: its only one, or one of several (max_publishers). Destroying
/// the last one closes the topic.
class Publisher {
 public:
  static Publisher create(const std::string& topic, PublisherConfig cfg = {}) {
    ringcast_publisher* p = nullptr;
    detail::check(ringcast_publisher_create(topic.c_str(), cfg.get(), &p));
    return Publisher(p);
  }
  Publisher(Publisher&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Publisher& operator=(Publisher&& o) noexcept {
    if (this != &o) { reset(); p_ = std::exchange(o.p_, nullptr); }
    return *this;
  }
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;
  ~Publisher() { reset(); }

  /// Copies and publishes (waits for room under Block); returns the sequence number.
  uint64_t send(const void* data, std::size_t len) {
    uint64_t seq = 0;
    detail::check(ringcast_publisher_send(p_, data, len, &seq));
    return seq;
  }
  uint64_t send(std::string_view bytes) { return send(bytes.data(), bytes.size()); }
  /// Loans the next slot; empty if none within the timeout (0: do not wait). One loan at
  /// a time: commit or abort the previous one first.
  Loan loan(std::chrono::nanoseconds timeout = forever) {
    ringcast_loan l{};
    ringcast_status s = detail::check(ringcast_publisher_loan(p_, detail::ns(timeout), &l));
    if (s != RINGCAST_OK) return Loan();
    return Loan(p_, l);
  }
  std::size_t slot_size() const {
    std::size_t n = 0;
    detail::check(ringcast_publisher_slot_size(p_, &n));
    return n;
  }
  /// The lane this publisher writes (0 on a topic with one publisher): Sample::lane().
  uint32_t lane() const {
    uint32_t n = 0;
    detail::check(ringcast_publisher_lane(p_, &n));
    return n;
  }
  /// Its id in that lane: Sample::writer(). (lane(), writer()) names this publisher.
  uint32_t writer() const {
    uint32_t n = 0;
    detail::check(ringcast_publisher_writer(p_, &n));
    return n;
  }
  std::size_t subscriber_count() {
    std::size_t n = 0;
    detail::check(ringcast_publisher_subscriber_count(p_, &n));
    return n;
  }
  /// Whether n subscribers attached within the timeout.
  bool wait_subscribers(std::size_t n, std::chrono::nanoseconds timeout = forever) {
    return detail::check(ringcast_publisher_wait_subscribers(p_, n, detail::ns(timeout))) ==
           RINGCAST_OK;
  }
  ringcast_publisher* handle() const noexcept { return p_; }

 private:
  explicit Publisher(ringcast_publisher* p) : p_(p) {}
  void reset() noexcept {
    if (p_ != nullptr) ringcast_publisher_destroy(std::exchange(p_, nullptr));
  }
  ringcast_publisher* p_ = nullptr;
};

/// A received message, or why there is none (status()). Releases its slot when it goes
/// out of scope.
class Sample {
 public:
  Sample() = default;
  Sample(Sample&& o) noexcept
      : s_(std::exchange(o.s_, nullptr)),
        c_(std::exchange(o.c_, {})),
        status_(std::exchange(o.status_, RINGCAST_TIMEOUT)) {}
  Sample& operator=(Sample&& o) noexcept {
    if (this != &o) {
      release();
      s_ = std::exchange(o.s_, nullptr);
      c_ = std::exchange(o.c_, {});
      status_ = std::exchange(o.status_, RINGCAST_TIMEOUT);
    }
    return *this;
  }
  Sample(const Sample&) = delete;
  Sample& operator=(const Sample&) = delete;
  ~Sample() { release(); }

  /// True if this holds a message.
  explicit operator bool() const noexcept { return s_ != nullptr; }
  /// RINGCAST_OK with a message; else RINGCAST_TIMEOUT, _DISCONNECTED, _EVICTED, _CORRUPT.
  ringcast_status status() const noexcept { return status_; }
  const std::byte* data() const noexcept { return static_cast<const std::byte*>(c_.data); }
  std::size_t size() const noexcept { return c_.len; }
  std::string_view view() const noexcept {
    return std::string_view(static_cast<const char*>(c_.data), c_.len);
  }
  /// The sequence number in its publisher's lane.
  uint64_t seq() const noexcept { return c_.seq; }
  /// Messages of its lane lost just before this one (Overwrite).
  uint64_t lost() const noexcept { return c_.lost; }
  /// Which publisher wrote it: its lane and its id there (Publisher::lane(), writer()).
  uint32_t lane() const noexcept { return c_.lane; }
  uint32_t writer() const noexcept { return c_.writer; }
  /// Releases the slot now (also done by the destructor).
  void release() noexcept {
    if (s_ != nullptr) ringcast_sample_release(std::exchange(s_, nullptr), &c_);
  }

 private:
  friend class Subscriber;
  Sample(ringcast_subscriber* s, ringcast_sample c) : s_(s), c_(c), status_(RINGCAST_OK) {}
  explicit Sample(ringcast_status why) : status_(why) {}
  ringcast_subscriber* s_ = nullptr;
  ringcast_sample c_{};
  ringcast_status status_ = RINGCAST_TIMEOUT;
};

/// A subscriber of one topic.
class Subscriber {
 public:
  /// Attaches, waiting up to `wait` for the topic (0: not at all; forever).
  static Subscriber attach(const std::string& topic, SubscriberOptions opts = {},
                           std::chrono::nanoseconds wait = std::chrono::nanoseconds(0)) {
    ringcast_subscriber* s = nullptr;
    detail::check(ringcast_subscriber_attach(topic.c_str(), opts.get(), detail::ns(wait), &s));
    return Subscriber(s);
  }
  Subscriber(Subscriber&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Subscriber& operator=(Subscriber&& o) noexcept {
    if (this != &o) { reset(); s_ = std::exchange(o.s_, nullptr); }
    return *this;
  }
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;
  ~Subscriber() { reset(); }

  /// The next message (empty on a timeout or at the end; see Sample::status()). A
  /// subscriber holds one sample at a time: release() the previous one (or let it go out
  /// of scope) first, so `s.release(); s = sub.recv();`, not `s = sub.recv();` alone,
  /// which throws RINGCAST_ERR_SAMPLE_OUTSTANDING.
  Sample recv(std::chrono::nanoseconds timeout = forever) {
    ringcast_sample c{};
    ringcast_status s = detail::check(
        ringcast_subscriber_recv_sized(s_, detail::ns(timeout), &c, sizeof c));
    if (s != RINGCAST_OK) return Sample(s);
    return Sample(s_, c);
  }
  /// A message if one is ready now.
  Sample try_recv() { return recv(std::chrono::nanoseconds(0)); }
  /// Every message ready now, up to `max`, to `f(const ringcast_sample&)` in order (the
  /// sample is valid during the call only), without waiting; returns how many were handed
  /// to `f`. `f` may return `bool`: `false` stops the drain after that message. The slots
  /// go back once per run and all of them before this returns. `*stopped` (if given) is
  /// RINGCAST_OK when nothing more was ready, `max` was reached or `f` stopped it, else
  /// RINGCAST_DISCONNECTED, _EVICTED or _CORRUPT. An exception from `f` stops the drain
  /// after the message that threw (it counts as handed over) and is rethrown here: every
  /// later message stays for the next receive. Inside `f`, calls on this subscriber (or
  /// its WaitSet) throw RINGCAST_ERR_REENTRANT. Release a held Sample first.
  template <class F>
  std::size_t drain(std::size_t max, F&& f, ringcast_status* stopped = nullptr) {
    struct Ctx {
      std::remove_reference_t<F>* f;
      std::exception_ptr error;
    } ctx{&f, nullptr};
    std::size_t n = 0;
    ringcast_status s = ringcast_subscriber_drain(
        s_, max,
        [](const ringcast_sample* c, void* p) -> int {
          auto* x = static_cast<Ctx*>(p);
          try {
            if constexpr (std::is_convertible_v<
                              std::invoke_result_t<std::remove_reference_t<F>&,
                                                   const ringcast_sample&>,
                              bool>) {
              return (*x->f)(*c) ? 0 : 1;
            } else {
              (*x->f)(*c);
              return 0;
            }
          } catch (...) {
            x->error = std::current_exception();
            return 1;
          }
        },
        &ctx, &n);
    if (ctx.error) std::rethrow_exception(ctx.error);
    detail::check(s);
    if (stopped != nullptr) *stopped = s;
    return n;
  }
  /// Messages lost in all (Overwrite laps), every lane together.
  uint64_t lost() const {
    uint64_t n = 0;
    detail::check(ringcast_subscriber_lost(s_, &n));
    return n;
  }
  /// Messages of lane `lane` lost (Overwrite laps); throws RINGCAST_ERR_INVALID_ARGUMENT
  /// for a lane the topic does not have.
  uint64_t lost_in(uint32_t lane) const {
    uint64_t n = 0;
    detail::check(ringcast_subscriber_lost_in(s_, lane, &n));
    return n;
  }
  ringcast_subscriber* handle() const noexcept { return s_; }

 private:
  explicit Subscriber(ringcast_subscriber* s) : s_(s) {}
  void reset() noexcept {
    if (s_ != nullptr) ringcast_subscriber_destroy(std::exchange(s_, nullptr));
  }
  ringcast_subscriber* s_ = nullptr;
};

/// Wakes a WaitSet's waiter from any thread.
class Notifier {
 public:
  Notifier(Notifier&& o) noexcept : n_(std::exchange(o.n_, nullptr)) {}
  Notifier& operator=(Notifier&& o) noexcept {
    if (this != &o) { reset(); n_ = std::exchange(o.n_, nullptr); }
    return *this;
  }
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;
  ~Notifier() { reset(); }
  void notify() const { detail::check(ringcast_notifier_notify(n_)); }

 private:
  friend class WaitSet;
  explicit Notifier(ringcast_notifier* n) : n_(n) {}
  void reset() noexcept {
    if (n_ != nullptr) ringcast_notifier_destroy(std::exchange(n_, nullptr));
  }
  ringcast_notifier* n_ = nullptr;
};

class Server;
class Client;

/// One thread waits on many subscribers, servers and clients. Members added stay usable
/// as before (receive from the ready ones after wait()); destroying a member removes it.
/// Every member must have released its sample, request or response before wait(). A
/// server is ready when a request waits (the wait receives it; the next recv() returns
/// it), a client when a response waits or its server is gone.
class WaitSet {
 public:
  explicit WaitSet(std::size_t capacity = 0) {
    detail::check(ringcast_waitset_create(capacity, &w_));
  }
  WaitSet(WaitSet&& o) noexcept
      : w_(std::exchange(o.w_, nullptr)), members_(std::exchange(o.members_, 0)),
        services_(std::exchange(o.services_, 0)), ready_(std::move(o.ready_)),
        ready_members_(std::move(o.ready_members_)) {}
  WaitSet& operator=(WaitSet&&) = delete;
  WaitSet(const WaitSet&) = delete;
  WaitSet& operator=(const WaitSet&) = delete;
  ~WaitSet() {
    if (w_ != nullptr) ringcast_waitset_destroy(w_);
  }

  void add(Subscriber& s) {
    detail::check(ringcast_waitset_add(w_, s.handle()));
    members_++;
  }
  void remove(Subscriber& s) {
    detail::check(ringcast_waitset_remove(w_, s.handle()));
    members_--;
  }
  inline void add(Server& s);
  inline void remove(Server& s);
  inline void add(Client& c);
  inline void remove(Client& c);
  Notifier notifier() {
    ringcast_notifier* n = nullptr;
    detail::check(ringcast_waitset_notifier(w_, &n));
    return Notifier(n);
  }
  /// Waits; returns RINGCAST_OK (members ready), RINGCAST_NOTIFIED or RINGCAST_TIMEOUT.
  ringcast_status wait(std::chrono::nanoseconds timeout = forever) {
    std::size_t n = 0;
    if (services_ == 0) {
      ready_members_.clear();
      ready_.assign(members_ > 0 ? members_ : 1, nullptr);
      ringcast_status s = detail::check(
          ringcast_waitset_wait(w_, detail::ns(timeout), ready_.data(), ready_.size(), &n));
      ready_.resize(n);
      return s;
    }
    ready_.clear();
    ready_members_.assign(members_ > 0 ? members_ : 1, ringcast_member{});
    ringcast_status s = detail::check(ringcast_waitset_wait_members(
        w_, detail::ns(timeout), ready_members_.data(), ready_members_.size(), &n));
    ready_members_.resize(n);
    for (const auto& m : ready_members_)
      if (m.subscriber != nullptr) ready_.push_back(m.subscriber);
    return s;
  }
  /// Whether the last wait found `s` ready.
  bool is_ready(const Subscriber& s) const {
    for (auto* r : ready_)
      if (r == s.handle()) return true;
    return false;
  }
  inline bool is_ready(const Server& s) const;
  inline bool is_ready(const Client& c) const;

 private:
  ringcast_waitset* w_ = nullptr;
  std::size_t members_ = 0;
  std::size_t services_ = 0;
  std::vector<ringcast_subscriber*> ready_;
  std::vector<ringcast_member> ready_members_;
};

// ---- Services: request and response ----------------------------------------------

/// How to serve: defaults from the library (0: its default), chainable setters.
class ServerConfig {
 public:
  ServerConfig() { detail::check(ringcast_server_config_init(&c_)); }
  ServerConfig& max_clients(uint64_t n) { c_.max_clients = n; return *this; }
  ServerConfig& queue(uint64_t n) { c_.queue = n; return *this; }
  ServerConfig& max_request(uint64_t bytes) { c_.max_request = bytes; return *this; }
  ServerConfig& response_slots(uint64_t n) { c_.response_slots = n; return *this; }
  ServerConfig& max_response(uint64_t bytes) { c_.max_response = bytes; return *this; }
  ServerConfig& wait(uint32_t strategy) { c_.wait = strategy; return *this; }
  ServerConfig& prefix(std::string p) { prefix_ = std::move(p); return *this; }
  const ringcast_server_config* get() {
    c_.prefix = prefix_.empty() ? nullptr : prefix_.c_str();
    return &c_;
  }

 private:
  ringcast_server_config c_{};
  std::string prefix_;
};

/// How to connect: defaults from the library, chainable setters.
class ClientOptions {
 public:
  ClientOptions() { detail::check(ringcast_client_options_init(&c_)); }
  ClientOptions& handshake_timeout(std::chrono::nanoseconds t) {
    c_.handshake_timeout_ns = static_cast<uint64_t>(t.count());
    return *this;
  }
  ClientOptions& max_in_flight(uint64_t n) { c_.max_in_flight = n; return *this; }
  ClientOptions& wait(uint32_t strategy) { c_.wait = strategy; return *this; }
  ClientOptions& prefix(std::string p) { prefix_ = std::move(p); return *this; }
  const ringcast_client_options* get() {
    c_.prefix = prefix_.empty() ? nullptr : prefix_.c_str();
    return &c_;
  }

 private:
  ringcast_client_options c_{};
  std::string prefix_;
};

/// A request a Server received, or why there is none (status()). Its bytes are read in
/// place until it is answered to its end (respond(), end()), deferred (defer()) or goes
/// out of scope. As in Rust, a request that goes out of scope neither answered to its
/// end nor deferred is ended (its client gets no response rather than waiting).
class Request {
 public:
  Request() = default;
  Request(Request&& o) noexcept
      : s_(std::exchange(o.s_, nullptr)), r_(std::exchange(o.r_, {})),
        status_(std::exchange(o.status_, RINGCAST_TIMEOUT)) {}
  Request& operator=(Request&& o) noexcept {
    if (this != &o) {
      finish();
      s_ = std::exchange(o.s_, nullptr);
      r_ = std::exchange(o.r_, {});
      status_ = std::exchange(o.status_, RINGCAST_TIMEOUT);
    }
    return *this;
  }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  ~Request() { finish(); }

  /// True if this holds a request that is not yet answered to its end or deferred.
  explicit operator bool() const noexcept { return s_ != nullptr; }
  /// RINGCAST_OK with a request; else RINGCAST_TIMEOUT.
  ringcast_status status() const noexcept { return status_; }
  const std::byte* data() const noexcept { return static_cast<const std::byte*>(r_.data); }
  std::size_t size() const noexcept { return r_.len; }
  std::string_view view() const noexcept {
    return std::string_view(static_cast<const char*>(r_.data), r_.len);
  }
  /// The request's id at its client.
  uint64_t id() const noexcept { return r_.id; }
  /// Answers with the last (or only) response (copied, never waiting). Throws
  /// RINGCAST_ERR_CLIENT_GONE, _CLIENT_FULL (the request stays answerable), _TOO_LARGE.
  void respond(const void* data, std::size_t len) {
    detail::check(ringcast_request_respond(s_, &r_, data, len));
    s_ = nullptr;
  }
  void respond(std::string_view bytes) { respond(bytes.data(), bytes.size()); }
  /// Sends one response of a stream, with more to come.
  void respond_part(const void* data, std::size_t len) {
    detail::check(ringcast_request_respond_part(s_, &r_, data, len));
  }
  void respond_part(std::string_view bytes) { respond_part(bytes.data(), bytes.size()); }
  /// Ends the stream with no further response.
  void end() {
    detail::check(ringcast_request_end(s_, &r_));
    s_ = nullptr;
  }
  /// Gives up on the request: its caller gets RINGCAST_ERR_CALL_FAILED at once.
  void fail() {
    detail::check(ringcast_request_fail(s_, &r_));
    s_ = nullptr;
  }
  /// Releases the bytes (copy what you need first) and returns the C request, to answer
  /// later with Server::respond / respond_part / end.
  ringcast_request defer() {
    if (s_ != nullptr) detail::check(ringcast_request_release(std::exchange(s_, nullptr), &r_));
    return r_;
  }

 private:
  friend class Server;
  Request(ringcast_server* s, ringcast_request r) : s_(s), r_(r), status_(RINGCAST_OK) {}
  explicit Request(ringcast_status why) : status_(why) {}
  void finish() noexcept {
    if (s_ == nullptr) return;
    ringcast_server* s = std::exchange(s_, nullptr);
    // Best effort, as in Rust: a gone or full client is told nothing more.
    if (ringcast_request_end(s, &r_) != RINGCAST_OK) ringcast_request_release(s, &r_);
  }
  ringcast_server* s_ = nullptr;
  ringcast_request r_{};
  ringcast_status status_ = RINGCAST_TIMEOUT;
};

/// The one server of a service. Destroying it ends the service: clients' calls end with
/// RINGCAST_DISCONNECTED.
class Server {
 public:
  static Server create(const std::string& service, ServerConfig cfg = {}) {
    ringcast_server* s = nullptr;
    detail::check(ringcast_server_create(service.c_str(), cfg.get(), &s));
    return Server(s);
  }
  Server(Server&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Server& operator=(Server&& o) noexcept {
    if (this != &o) { reset(); s_ = std::exchange(o.s_, nullptr); }
    return *this;
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server() { reset(); }

  /// The next request (empty on a timeout). One at a time: answer, defer or drop the
  /// previous one first (else RINGCAST_ERR_SAMPLE_OUTSTANDING is thrown).
  Request recv(std::chrono::nanoseconds timeout = forever) {
    ringcast_request r{};
    ringcast_status st = detail::check(ringcast_server_recv(s_, detail::ns(timeout), &r));
    if (st != RINGCAST_OK) return Request(st);
    return Request(s_, r);
  }
  Request try_recv() { return recv(std::chrono::nanoseconds(0)); }
  /// Answers a deferred request (Request::defer) with its last response.
  void respond(ringcast_request& to, const void* data, std::size_t len) {
    detail::check(ringcast_request_respond(s_, &to, data, len));
  }
  void respond(ringcast_request& to, std::string_view bytes) {
    respond(to, bytes.data(), bytes.size());
  }
  void respond_part(ringcast_request& to, std::string_view bytes) {
    detail::check(ringcast_request_respond_part(s_, &to, bytes.data(), bytes.size()));
  }
  void end(ringcast_request& to) { detail::check(ringcast_request_end(s_, &to)); }
  void fail(ringcast_request& to) { detail::check(ringcast_request_fail(s_, &to)); }
  /// Clients connected now.
  std::size_t clients() {
    std::size_t n = 0;
    detail::check(ringcast_server_clients(s_, &n));
    return n;
  }
  ringcast_server* handle() const noexcept { return s_; }

 private:
  explicit Server(ringcast_server* s) : s_(s) {}
  void reset() noexcept {
    if (s_ != nullptr) ringcast_server_destroy(std::exchange(s_, nullptr));
  }
  ringcast_server* s_ = nullptr;
};

/// A response, or why there is none (status()). Read in place; released when it goes
/// out of scope.
class Response {
 public:
  Response() = default;
  Response(Response&& o) noexcept
      : c_(std::exchange(o.c_, nullptr)), r_(std::exchange(o.r_, {})),
        status_(std::exchange(o.status_, RINGCAST_TIMEOUT)) {}
  Response& operator=(Response&& o) noexcept {
    if (this != &o) {
      release();
      c_ = std::exchange(o.c_, nullptr);
      r_ = std::exchange(o.r_, {});
      status_ = std::exchange(o.status_, RINGCAST_TIMEOUT);
    }
    return *this;
  }
  Response(const Response&) = delete;
  Response& operator=(const Response&) = delete;
  ~Response() { release(); }

  explicit operator bool() const noexcept { return c_ != nullptr; }
  /// RINGCAST_OK with a response; else RINGCAST_TIMEOUT, _DISCONNECTED, _FULL, _ENDED.
  ringcast_status status() const noexcept { return status_; }
  const std::byte* data() const noexcept { return static_cast<const std::byte*>(r_.data); }
  std::size_t size() const noexcept { return r_.len; }
  std::string_view view() const noexcept {
    return std::string_view(static_cast<const char*>(r_.data), r_.len);
  }
  /// The call it answers.
  uint64_t call() const noexcept { return r_.seq; }
  void release() noexcept {
    if (c_ != nullptr) ringcast_response_release(std::exchange(c_, nullptr), &r_);
  }

 private:
  friend class Client;
  Response(ringcast_client* c, ringcast_sample r) : c_(c), r_(r), status_(RINGCAST_OK) {}
  explicit Response(ringcast_status why) : status_(why) {}
  ringcast_client* c_ = nullptr;
  ringcast_sample r_{};
  ringcast_status status_ = RINGCAST_TIMEOUT;
};

/// A client of a service. Destroying it disconnects.
class Client {
 public:
  /// Connects, waiting up to `wait` for a live server (0: not at all; forever). Throws
  /// RINGCAST_ERR_NO_SERVER, _TOO_MANY_CLIENTS, or RINGCAST_TIMEOUT as an Error when the
  /// server does not answer the greeting in time.
  static Client connect(const std::string& service, ClientOptions opts = {},
                        std::chrono::nanoseconds wait = std::chrono::nanoseconds(0)) {
    ringcast_client* c = nullptr;
    ringcast_status st = detail::check(
        ringcast_client_connect(service.c_str(), opts.get(), detail::ns(wait), &c));
    if (st != RINGCAST_OK) throw Error(st, "service " + service + ": no answer to the greeting");
    return Client(c);
  }
  Client(Client&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  Client& operator=(Client&& o) noexcept {
    if (this != &o) { reset(); c_ = std::exchange(o.c_, nullptr); }
    return *this;
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() { reset(); }

  /// Sends a request and returns its first response (empty on RINGCAST_TIMEOUT,
  /// _DISCONNECTED, _FULL: see status()). Throws RINGCAST_ERR_NO_RESPONSE when the server
  /// ended the request with none. One response held at a time: release the previous one.
  Response call(const void* data, std::size_t len, std::chrono::nanoseconds timeout = forever) {
    ringcast_sample r{};
    ringcast_status st =
        detail::check(ringcast_client_call(c_, data, len, detail::ns(timeout), &r));
    if (st != RINGCAST_OK) return Response(st);
    return Response(c_, r);
  }
  Response call(std::string_view bytes, std::chrono::nanoseconds timeout = forever) {
    return call(bytes.data(), bytes.size(), timeout);
  }
  /// Sends a request; returns its call id, or 0 on RINGCAST_TIMEOUT / _FULL /
  /// _DISCONNECTED.
  uint64_t send(std::string_view bytes, std::chrono::nanoseconds timeout = forever) {
    uint64_t call = 0;
    detail::check(
        ringcast_client_send(c_, bytes.data(), bytes.size(), detail::ns(timeout), &call));
    return call;
  }
  /// The next response to `call` (empty with RINGCAST_ENDED once its stream ended, or on
  /// a timeout or disconnection).
  Response recv(uint64_t call, std::chrono::nanoseconds timeout = forever) {
    ringcast_sample r{};
    ringcast_status st =
        detail::check(ringcast_client_recv(c_, call, detail::ns(timeout), &r));
    if (st != RINGCAST_OK) return Response(st);
    return Response(c_, r);
  }
  std::size_t max_request() {
    std::size_t n = 0;
    detail::check(ringcast_client_max_request(c_, &n));
    return n;
  }
  ringcast_client* handle() const noexcept { return c_; }

 private:
  explicit Client(ringcast_client* c) : c_(c) {}
  void reset() noexcept {
    if (c_ != nullptr) ringcast_client_destroy(std::exchange(c_, nullptr));
  }
  ringcast_client* c_ = nullptr;
};

inline void WaitSet::add(Server& s) {
  detail::check(ringcast_waitset_add_server(w_, s.handle()));
  members_++;
  services_++;
}
inline void WaitSet::remove(Server& s) {
  detail::check(ringcast_waitset_remove_server(w_, s.handle()));
  members_--;
  services_--;
}
inline void WaitSet::add(Client& c) {
  detail::check(ringcast_waitset_add_client(w_, c.handle()));
  members_++;
  services_++;
}
inline void WaitSet::remove(Client& c) {
  detail::check(ringcast_waitset_remove_client(w_, c.handle()));
  members_--;
  services_--;
}
inline bool WaitSet::is_ready(const Server& s) const {
  for (const auto& m : ready_members_)
    if (m.server != nullptr && m.server == s.handle()) return true;
  return false;
}
inline bool WaitSet::is_ready(const Client& c) const {
  for (const auto& m : ready_members_)
    if (m.client != nullptr && m.client == c.handle()) return true;
  return false;
}

}  // namespace ringcast

#endif  // RINGCAST_HPP
