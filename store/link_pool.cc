// LinkPool (see link_pool.h): the per-shard lending of store links, its
// waiter queue and the pool's link gauges and counters.
#include "store/link_pool.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/log.h"

namespace pimap::store {

// One Borrow() until it is answered.
struct LinkPool::Request {
  Request(const session::StoreCredentials& c, std::string id,
          BorrowCallback cb, int64_t now_ms, int64_t timeout)
      : credentials(c),
        identity(std::move(id)),
        done(std::move(cb)),
        start_ms(now_ms),
        timeout_ms(timeout),
        deadline_ms(now_ms + std::max<int64_t>(timeout, 0)) {}
  // The password is a secret: do not leave it behind in freed memory.
  ~Request() {
    std::fill(credentials.password.begin(), credentials.password.end(), '\0');
  }

  // Kept until the borrower has a link: a login may have to be retried with
  // them (the first link died before it was delivered).
  session::StoreCredentials credentials;
  std::string identity;
  BorrowCallback done;
  int64_t start_ms;
  int64_t timeout_ms;
  int64_t deadline_ms;
  TimerWheel::TimerId deadline_timer = 0;
  // Entered the waiter queue at some point: its wait goes into the histogram.
  bool waited = false;
  std::list<RequestPtr>::iterator queue_pos;
  std::list<Request*>::iterator identity_queue_pos;
  // Non-null while a login for this request is in progress (the entry owns
  // the request then).
  Entry* opening = nullptr;
};

// One link of the pool, and its client while the pool holds it (idle or being
// handed over): a per-link client, because OnStoreClosed does not say which
// link closed.
class LinkPool::Entry final : public session::StoreLinkClient {
 public:
  Entry(LinkPool* owner, std::string id)
      : pool(owner), identity(std::move(id)) {}

  void OnStoreBytes(absl::string_view) override {
    // Unsolicited data on a link nobody borrowed (EXISTS, EXPUNGE, ...): the
    // next borrower catches up from its own checkpoint (highest_modseq).
  }
  void OnStoreResponseEnd(absl::string_view) override {}
  void OnStoreDrained() override {}
  void OnStoreClosed(absl::Status reason) override {
    pool->OnPoolOwnedLinkClosed(this, reason);
  }

  LinkPool* const pool;
  const std::string identity;
  State state = State::kOpening;
  session::PooledLink pooled;
  // kOpening: the borrower waiting for this login (null once it gave up).
  // kHandover: the borrower it is being delivered to.
  RequestPtr request;
  // kIdle: the idle timeout; kHandover: the delivery.
  TimerWheel::TimerId timer = 0;
  std::list<Entry*>::iterator lru_pos;
  std::list<Entry*>::iterator identity_pos;
};

LinkPool::LinkPool(session::StoreConnector* connector, TimerWheel* timers,
                   ShardCounters* counters, LinkPoolConfig config)
    : connector_(connector),
      timers_(timers),
      counters_(counters),
      config_{std::max<size_t>(config.max_links, 1), config.idle_timeout_ms} {}

LinkPool::~LinkPool() {
  Shutdown();
  alive_.reset();
  size_t lent = 0;
  for (auto& [key, e] : entries_) {
    if (e->state == State::kLent) ++lent;
    // What is left is opening (closed by the login callback when the login
    // ends) or lent; either way the gauges no longer cover it.
    SetState(e.get(), State::kOpening);
  }
  if (lent != 0) {
    PIMAP_LOG(ERROR) << "store link pool destroyed with " << lent
                     << " links still lent";
  }
}

std::string LinkPool::IdentityOf(const session::StoreCredentials& credentials) {
  // NUL cannot occur in an IMAP user name, so the triple is unambiguous.
  return absl::StrCat(credentials.user, absl::string_view("\0", 1),
                      credentials.authzid, absl::string_view("\0", 1),
                      credentials.profile);
}

session::PooledLink* LinkPool::TryBorrow(
    const session::StoreCredentials& credentials) {
  if (shutting_down_) return nullptr;
  Entry* e = FindIdle(IdentityOf(credentials));
  if (e == nullptr) return nullptr;
  RemoveIdle(e);
  SetState(e, State::kLent);
  CounterAdd(counters_->store_link_borrows);
  return &e->pooled;
}

void LinkPool::Borrow(const session::StoreCredentials& credentials,
                      int64_t timeout_ms, BorrowCallback done) {
  auto r = std::make_unique<Request>(credentials, IdentityOf(credentials),
                                     std::move(done), timers_->now_ms(),
                                     timeout_ms);
  if (shutting_down_) {
    Fail(std::move(r), absl::UnavailableError("shutting down"));
    return;
  }
  Request* raw = r.get();
  raw->deadline_timer = timers_->Schedule(
      raw->deadline_ms - timers_->now_ms(), [this, raw] { OnDeadline(raw); });
  Serve(std::move(r), /*requeue=*/false);
}

session::PooledLink* LinkPool::Adopt(const session::StoreCredentials& credentials,
                                     session::StoreLink* link) {
  if (shutting_down_) return nullptr;
  if (entries_.size() >= config_.max_links && !idle_lru_.empty()) {
    CounterAdd(counters_->store_link_evictions);
    CloseIdle(idle_lru_.back());
  }
  auto owned = std::make_unique<Entry>(this, IdentityOf(credentials));
  Entry* e = owned.get();
  entries_.emplace(&e->pooled, std::move(owned));
  ++opening_;  // an entry starts as opening (Erase undoes it)
  e->pooled.link = link;
  CounterAdd(counters_->store_link_opens);
  CounterAdd(counters_->store_link_borrows);
  SetState(e, State::kLent);
  return &e->pooled;
}

void LinkPool::Return(session::PooledLink* link, bool reusable) {
  Entry* e = FindLent(link, "Return");
  if (e == nullptr) return;
  if (!reusable || shutting_down_) {
    e->pooled.link->Close();
    Erase(e);
    ServeWaiters();
    return;
  }
  // Back to the pool as client; reading on, so that a BYE or a closed
  // connection is noticed while the link is idle.
  e->pooled.link->SetClient(e);
  e->pooled.link->SetReading(true);
  Park(e);
}

void LinkPool::Lost(session::PooledLink* link) {
  Entry* e = FindLent(link, "Lost");
  if (e == nullptr) return;
  e->pooled.link = nullptr;  // gone already
  Erase(e);
  ServeWaiters();
}

void LinkPool::Shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  while (!idle_lru_.empty()) CloseIdle(idle_lru_.back());
  while (!waiters_.empty()) {
    Fail(Dequeue(waiters_.front().get()),
         absl::UnavailableError("shutting down"));
  }
  std::vector<Entry*> handover;
  for (auto& [key, e] : entries_) {
    if (e->state == State::kOpening && e->request != nullptr) {
      // The login goes on; OnLoginDone closes its link.
      e->request->opening = nullptr;
      Fail(std::move(e->request), absl::UnavailableError("shutting down"));
    } else if (e->state == State::kHandover) {
      handover.push_back(e.get());
    }
  }
  for (Entry* e : handover) {
    timers_->Cancel(e->timer);
    e->timer = 0;
    Fail(std::move(e->request), absl::UnavailableError("shutting down"));
    e->pooled.link->Close();
    Erase(e);
  }
}

void LinkPool::Serve(RequestPtr r, bool requeue) {
  if (Entry* idle = FindIdle(r->identity); idle != nullptr) {
    RemoveIdle(idle);
    Handover(idle, std::move(r));
    return;
  }
  // Queued borrowers go first (FIFO); a requeued one is the oldest of all.
  if (waiters_.empty() || requeue) {
    if (entries_.size() < config_.max_links) {
      Open(std::move(r));
      return;
    }
    if (!idle_lru_.empty()) {
      CounterAdd(counters_->store_link_evictions);
      CloseIdle(idle_lru_.back());
      Open(std::move(r));
      return;
    }
  }
  if (!requeue && waiters_.size() >= max_waiters()) {
    Fail(std::move(r),
         absl::UnavailableError("too many borrowers waiting for a store link"));
    return;
  }
  Enqueue(std::move(r), /*front=*/requeue);
}

void LinkPool::ServeWaiters() {
  if (serving_) {
    serve_again_ = true;
    return;
  }
  serving_ = true;
  do {
    serve_again_ = false;
    while (!waiters_.empty() && !shutting_down_) {
      Request* head = waiters_.front().get();
      if (Entry* idle = FindIdle(head->identity); idle != nullptr) {
        RemoveIdle(idle);
        Handover(idle, Dequeue(head));
      } else if (entries_.size() < config_.max_links) {
        Open(Dequeue(head));
      } else if (!idle_lru_.empty()) {
        CounterAdd(counters_->store_link_evictions);
        CloseIdle(idle_lru_.back());
        Open(Dequeue(head));
      } else {
        break;  // Nothing free: wait for the next Return, close or timeout.
      }
    }
  } while (serve_again_);
  serving_ = false;
}

void LinkPool::Park(Entry* e) {
  if (!shutting_down_) {
    auto it = waiters_by_identity_.find(e->identity);
    if (it != waiters_by_identity_.end()) {
      Handover(e, Dequeue(it->second.front()));
      return;
    }
  }
  MakeIdle(e);
  // A waiter of another identity may evict it right away.
  ServeWaiters();
}

void LinkPool::Open(RequestPtr r) {
  auto owned = std::make_unique<Entry>(this, r->identity);
  Entry* e = owned.get();
  entries_.emplace(&e->pooled, std::move(owned));
  ++opening_;
  r->opening = e;
  // A copy for the call: the login may finish (and free the request)
  // before Login() returns. A pooled link is shared by the user's devices:
  // no device's own ID fields on it (its opener's address is fine).
  session::StoreCredentials credentials = r->credentials;
  credentials.client_id.clear();
  e->request = std::move(r);
  std::weak_ptr<bool> alive = alive_;
  connector_->Login(credentials, [this, alive, e](
                                     absl::StatusOr<session::StoreLink*> result) {
    if (alive.expired()) {  // The pool is gone: nobody wants the link.
      if (result.ok()) (*result)->Close();
      return;
    }
    OnLoginDone(e, std::move(result));
  });
  std::fill(credentials.password.begin(), credentials.password.end(), '\0');
}

void LinkPool::OnLoginDone(Entry* e,
                           absl::StatusOr<session::StoreLink*> result) {
  RequestPtr r = std::move(e->request);
  if (r != nullptr) r->opening = nullptr;
  if (!result.ok()) {
    PIMAP_LOG(DEBUG) << "pooled store login failed: " << result.status();
    Erase(e);
    if (r != nullptr) Fail(std::move(r), result.status());
    ServeWaiters();
    return;
  }
  CounterAdd(counters_->store_link_opens);
  e->pooled.link = *result;
  e->pooled.link->SetClient(e);
  if (shutting_down_) {
    e->pooled.link->Close();
    Erase(e);
    return;
  }
  if (r != nullptr) {
    Handover(e, std::move(r));
  } else {
    // Its borrower gave up meanwhile; the link is still good for others.
    Park(e);
  }
}

void LinkPool::Handover(Entry* e, RequestPtr r) {
  if (r->deadline_timer != 0) {
    timers_->Cancel(r->deadline_timer);
    r->deadline_timer = 0;
  }
  SetState(e, State::kHandover);
  e->request = std::move(r);
  e->timer = timers_->Schedule(0, [this, e] { FinishHandover(e); });
}

void LinkPool::FinishHandover(Entry* e) {
  e->timer = 0;
  SetState(e, State::kLent);
  RequestPtr r = std::move(e->request);
  CounterAdd(counters_->store_link_borrows);
  if (r->waited) {
    HistogramObserve(counters_->store_link_wait,
                     timers_->now_ms() - r->start_ms);
  }
  BorrowCallback done = std::move(r->done);
  r.reset();
  // Last: the borrower may call back into the pool.
  done(&e->pooled);
}

void LinkPool::Fail(RequestPtr r, absl::Status status) {
  if (r->deadline_timer != 0) {
    timers_->Cancel(r->deadline_timer);
    r->deadline_timer = 0;
  }
  timers_->Schedule(0, [done = std::move(r->done),
                        status = std::move(status)]() mutable {
    done(std::move(status));
  });
}

void LinkPool::OnDeadline(Request* raw) {
  raw->deadline_timer = 0;
  RequestPtr r;
  if (raw->opening != nullptr) {
    // Its login goes on; the link will serve someone else.
    r = std::move(raw->opening->request);
    r->opening = nullptr;
  } else {
    r = Dequeue(raw);
  }
  CounterAdd(counters_->store_link_wait_timeouts);
  const int64_t timeout = r->timeout_ms;
  Fail(std::move(r), absl::UnavailableError(absl::StrCat(
                         "no store link within ", timeout, " ms")));
}

void LinkPool::Enqueue(RequestPtr r, bool front) {
  Request* raw = r.get();
  raw->waited = true;
  std::list<Request*>& same = waiters_by_identity_[raw->identity];
  if (front) {
    raw->identity_queue_pos = same.insert(same.begin(), raw);
    raw->queue_pos = waiters_.insert(waiters_.begin(), std::move(r));
  } else {
    raw->identity_queue_pos = same.insert(same.end(), raw);
    raw->queue_pos = waiters_.insert(waiters_.end(), std::move(r));
  }
  GaugeAdd(counters_->store_link_waiters, 1);
}

LinkPool::RequestPtr LinkPool::Dequeue(Request* raw) {
  auto same = waiters_by_identity_.find(raw->identity);
  same->second.erase(raw->identity_queue_pos);
  if (same->second.empty()) waiters_by_identity_.erase(same);
  RequestPtr r = std::move(*raw->queue_pos);
  waiters_.erase(raw->queue_pos);
  GaugeAdd(counters_->store_link_waiters, -1);
  return r;
}

void LinkPool::MakeIdle(Entry* e) {
  SetState(e, State::kIdle);
  e->lru_pos = idle_lru_.insert(idle_lru_.begin(), e);
  std::list<Entry*>& same = idle_by_identity_[e->identity];
  e->identity_pos = same.insert(same.begin(), e);
  e->timer = timers_->Schedule(config_.idle_timeout_ms, [this, e] {
    e->timer = 0;
    CloseIdle(e);
    ServeWaiters();
  });
}

void LinkPool::RemoveIdle(Entry* e) {
  if (e->timer != 0) {
    timers_->Cancel(e->timer);
    e->timer = 0;
  }
  idle_lru_.erase(e->lru_pos);
  auto same = idle_by_identity_.find(e->identity);
  same->second.erase(e->identity_pos);
  if (same->second.empty()) idle_by_identity_.erase(same);
}

LinkPool::Entry* LinkPool::FindIdle(const std::string& identity) const {
  auto it = idle_by_identity_.find(identity);
  return it == idle_by_identity_.end() ? nullptr : it->second.front();
}

void LinkPool::CloseIdle(Entry* e) {
  RemoveIdle(e);
  // Close() says LOGOUT and calls nothing back.
  e->pooled.link->Close();
  Erase(e);
}

void LinkPool::OnPoolOwnedLinkClosed(Entry* e, const absl::Status& reason) {
  // A lent link has its borrower as client; an opening one has no client yet.
  if (e->state != State::kIdle && e->state != State::kHandover) return;
  PIMAP_LOG(DEBUG) << "pooled store link closed while not lent: " << reason;
  e->pooled.link = nullptr;  // gone already
  if (e->state == State::kIdle) {
    RemoveIdle(e);
    Erase(e);
    ServeWaiters();
    return;
  }
  timers_->Cancel(e->timer);
  e->timer = 0;
  RequestPtr r = std::move(e->request);
  Erase(e);
  // Serve the borrower again, ahead of everyone, within what is left of its
  // time limit.
  Request* raw = r.get();
  raw->deadline_timer = timers_->Schedule(
      raw->deadline_ms - timers_->now_ms(), [this, raw] { OnDeadline(raw); });
  Serve(std::move(r), /*requeue=*/true);
  ServeWaiters();
}

void LinkPool::SetState(Entry* e, State state) {
  // Gauges: open = idle + busy; busy = handed over or lent.
  auto add = [&](State s, int64_t d) {
    switch (s) {
      case State::kOpening:
        opening_ += d;
        return;
      case State::kIdle:
        GaugeAdd(counters_->store_links_idle, d);
        break;
      case State::kHandover:
      case State::kLent:
        busy_ += d;
        GaugeAdd(counters_->store_links_busy, d);
        break;
    }
    GaugeAdd(counters_->store_links_open, d);
  };
  add(e->state, -1);
  add(state, 1);
  e->state = state;
}

void LinkPool::Erase(Entry* e) {
  SetState(e, State::kOpening);
  --opening_;
  entries_.erase(&e->pooled);
}

LinkPool::Entry* LinkPool::FindLent(session::PooledLink* link,
                                    const char* what) {
  auto it = entries_.find(link);
  if (it == entries_.end() || it->second->state != State::kLent) {
    PIMAP_LOG(ERROR) << "store link pool: " << what
                     << " of a link that is not lent; ignored";
    return nullptr;
  }
  return it->second.get();
}

}  // namespace pimap::store
