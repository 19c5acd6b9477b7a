// The store-event intake (issue 5): where the message store posts its change
// notifications (docs/store-events.md; Dovecot's push_notification Lua driver
// with tools/dovecot/push.lua). A POST route (`path`) on the gateway's HTTP
// core (core/http/endpoint.h, which owns the connections and their bounds);
// this file owns what a notification means: the secret, validation, routing,
// counters and logs. One EventIntake per shard, each with its own
// SO_REUSEPORT listener on the same address.
//
// Per request: parse the JSON into typed events, route them to the shard that
// owns the user (ShardForUser) with Shard::Post, and answer 204 at once;
// nothing on this path waits. Dovecot sends the POST synchronously inside mail
// delivery and IMAP commands, so a slow answer here would stall the store.
//  * Overload: at most `max_queued_per_shard` notifications may wait for one
//    owner shard (and Post() itself is bounded); beyond that the answer is
//    503 + Retry-After: 1 and the notification is gone (the store does not
//    retry): the owner must reconcile (pimap_store_notifications_lost_total,
//    ShardCounters::intake_lost).
//  * Order: a notification is enqueued before its 204 leaves, so notifications
//    the store sends one after another (it waits for each answer) reach the
//    owner in that order, whichever shard accepted their connections.
//  * Answers: 204 routed (or nothing to route); 400 bad HTTP, or a notification
//    that fails validation (store_notification.h: every field checked, bounds
//    on events, flags, names) with the reason in the body; 401 secret missing
//    or wrong; 404 other path; 405 other method; 411 neither Content-Length
//    nor chunked; 413 body > max_body_bytes; 431 header block > 16 KiB; 503
//    overload (the owner's queue: connection kept; max_connections: closed).
//    Errors (4xx) close the connection.
//  * Refusals are counted by reason (pimap_intake_rejected_total{reason}) and
//    logged at most once per burst per shard, without values from the body.
//  * Authentication: a shared secret (X-Pimap-Secret), compared in constant
//    time. Without one the intake does not start unless `insecure` says so:
//    anyone who can reach the port could otherwise push events to devices.
#ifndef PIMAP_STORE_EVENTS_EVENT_INTAKE_H_
#define PIMAP_STORE_EVENTS_EVENT_INTAKE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/http/endpoint.h"
#include "core/imap/user_name_format.h"
#include "core/session/store_watch.h"
#include "store/events/store_notification.h"

namespace pimap::engine {
class Shard;
}  // namespace pimap::engine

namespace pimap::store {

struct EventIntakeConfig {
  std::string host;
  uint16_t port = 0;
  std::string path = "/dovecot";
  // Every request must carry "X-Pimap-Secret: <secret>", else 401. Start()
  // refuses an empty secret unless `insecure` is set (then nothing is checked;
  // a secret, when there is one, is always checked).
  std::string secret;
  bool insecure = false;
  // The request body, at most (else 413).
  size_t max_body_bytes = 1024 * 1024;
  StoreNotificationLimits limits;
  // Notifications waiting in one owner shard's inbox, at most (then 503).
  int64_t max_queued_per_shard = 4096;
  // Open intake connections per shard, at most (more are answered 503 and
  // closed).
  size_t max_connections = 1024;
  // A connection with no complete request for this long is closed.
  int64_t idle_timeout_ms = 30000;
  // The user names the store reports go through the same rule as device
  // logins (--user-name-format): its pushes reach the sessions keyed by the
  // canonical name whatever form its configuration reports them in.
  imap::UserNameFormat user_name_format;
  // A cluster (issue 16): called on the owner shard before a notification is
  // delivered there; true when it took the notification (this node does not
  // serve the user: it is passed on to the node that does). Requests marked
  // "X-Pimap-Forwarded: 1" (from another node, with the secret) are never
  // diverted. Unset: everything is delivered here.
  using Divert = std::function<bool(engine::Shard&, StoreNotification&)>;
  Divert divert;
};

// Per-shard sink lookup: the session layer registers one sink per shard before
// traffic. Called on the owner shard's thread, with that shard's id.
using SinkOfShard = std::function<session::StoreEventSink*(int shard)>;

// The secret file's content without trailing whitespace; an error if
// unreadable, empty, or with a control character left (it could never match a
// header).
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

class EventIntake {
 public:
  // Shard thread: binds (SO_REUSEPORT) and starts accepting. Freed by Stop();
  // call it from a stop hook: shard->AddStopHook([i] { i->Stop(); }).
  // InvalidArgument for a path not starting with "/", or no secret without
  // `insecure`.
  static absl::StatusOr<EventIntake*> Start(engine::Shard* shard,
                                            const EventIntakeConfig& config,
                                            SinkOfShard sinks);
  // Shard thread: stops accepting, closes every intake connection, frees
  // itself.
  void Stop();

 private:
  EventIntake(engine::Shard* shard, const EventIntakeConfig& config,
              SinkOfShard sinks);
  ~EventIntake();

  // The route's handler: one POST to `path`.
  http::EndpointResponse Handle(const http::HttpRequest& request);
  // The endpoint's own answers (over capacity, bad HTTP, 404/405), counted.
  void OnRefusal(http::EndpointRefusal why, int status,
                 absl::string_view reason);
  // Enqueues the notification for its owner shard; false if that shard is full.
  bool Route(int owner, StoreNotification&& n);

  engine::Shard* shard_;
  EventIntakeConfig config_;
  std::shared_ptr<const SinkOfShard> sinks_;
  // As sinks_: a notification in flight to another shard may outlive us.
  std::shared_ptr<const EventIntakeConfig::Divert> divert_;
  http::HttpEndpoint* endpoint_ = nullptr;
};

}  // namespace pimap::store

#endif  // PIMAP_STORE_EVENTS_EVENT_INTAKE_H_
