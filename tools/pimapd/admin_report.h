// What the admin endpoint's commands (pimapctl who, sessions, kick) report,
// as plain data gathered from the shards (admin_sessions.h), and its JSON
// rendering: the one form the endpoint answers in (pimapctl renders the
// human form from it). No I/O and no session types here: unit-tested alone.
#ifndef PIMAP_TOOLS_PIMAPD_ADMIN_REPORT_H_
#define PIMAP_TOOLS_PIMAPD_ADMIN_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

namespace pimap {

// A P-IMAP device session (pimapctl who).
struct AdminDevice {
  std::string user;
  std::string device;
  int shard = 0;
  bool connected = false;
  std::string binding;  // "imap", "imaps", "http", "imap hibernated"; "" away
  int64_t idle_ms = 0;  // since its last command (connected) or since it left
  bool store_link = false;  // holds a store link of its own now
  uint64_t journal = 0;     // events journaled and not yet delivered
};

// A user's state apart from its devices (pimapctl who).
struct AdminUser {
  std::string user;
  int shard = 0;
  uint64_t parked = 0;  // stock clients whose IDLE the gateway holds
  bool watch = false;   // the user's store watch is open
};

// One device session in detail (pimapctl sessions USER).
struct AdminSession {
  AdminDevice device;
  uint64_t session_id = 0;
  std::string selected;  // "" when none
  bool read_only = false;
  uint64_t journal_limit = 0;
  std::string filters;  // the durable form (XFILTER lines)
  std::string prefs;    // the durable form (XSETPIMAPPREF lines)
  // The checkpoint of the selected folder's view.
  uint32_t uidvalidity = 0;
  uint64_t modseq = 0;
  uint64_t view_messages = 0;
  bool checkpoint_dirty = false;
  bool restored = false;
  uint64_t folder_events = 0;  // mailbox changes held for the device
};

// What a kick did to one device.
struct AdminKicked {
  std::string user;
  std::string device;
  int shard = 0;
  bool was_connected = false;  // it had a connection, which was told BYE
  bool closed = false;         // ... and is detached from the session now
  bool forgotten = false;      // its P-IMAP session ended (--forget)
};

// Everything one shard answers for one command; the endpoint merges them.
struct AdminShardReport {
  int shard = 0;
  std::vector<AdminDevice> devices;
  std::vector<AdminUser> users;
  std::vector<AdminSession> sessions;
  std::vector<AdminKicked> kicked;
  bool truncated = false;  // more rows than the bound
  uint64_t drained = 0;    // drain: connections told BYE
};

// Rows kept per command, over all shards: bounds the answer's size (a who of
// a gateway with a million devices is not an operator's question).
inline constexpr size_t kAdminMaxRows = 10000;

// The merged answer of every shard that answered, sorted (user, device),
// with the shards that did not answer in time (`missing`).
AdminShardReport MergeReports(std::vector<AdminShardReport> reports);

// JSON bodies (one object, a newline after it).
std::string RenderWhoJson(const AdminShardReport& merged,
                          const std::vector<int>& missing);
std::string RenderSessionsJson(const AdminShardReport& merged,
                               const std::vector<int>& missing);
std::string RenderKickJson(const AdminShardReport& merged,
                           const std::vector<int>& missing);
std::string RenderDrainJson(const AdminShardReport& merged,
                            const std::vector<int>& missing);
// {"error": message} plus the missing shards, if any.
std::string RenderErrorJson(const std::string& message,
                            const std::vector<int>& missing = {});

}  // namespace pimap

#endif  // PIMAP_TOOLS_PIMAPD_ADMIN_REPORT_H_
