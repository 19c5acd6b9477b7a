// JSON notification -> validated, typed store events (mapping rules and bounds
// in the header).
#include "store/events/store_notification.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/imap/syntax.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"

namespace pimap::store {

namespace {

using rapidjson::Value;

// A refusal: the metric's reason and a message without any value from the body.
struct Refusal {
  IntakeReject reason;
  std::string message;
};

Refusal Refuse(IntakeReject reason, absl::string_view why) {
  return Refusal{reason, absl::StrCat("store notification: ", why)};
}

std::optional<absl::string_view> StringField(const Value& object,
                                             const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return std::nullopt;
  return absl::string_view(it->value.GetString(), it->value.GetStringLength());
}

// A non-negative integer, also when a sender encoded it as an integral float.
std::optional<uint64_t> UintOf(const Value& v) {
  if (v.IsUint64()) return v.GetUint64();
  if (v.IsDouble()) {
    const double d = v.GetDouble();
    if (d >= 0 && d < 18446744073709551616.0 && std::floor(d) == d) {
      return static_cast<uint64_t>(d);
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> UintField(const Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd()) return std::nullopt;
  return UintOf(it->value);
}

bool IsRecent(absl::string_view flag) {
  return absl::EqualsIgnoreCase(flag, "\\Recent");
}

// Flags in first-added order without duplicates (compared case-insensitively,
// the first spelling kept), with removal. Add and Remove are O(1) on average,
// so n flags cost O(n) (a list compared against itself was O(n^2)). A flag
// removed and added again goes to the end, as the store would list it.
class FlagSet {
 public:
  void Add(absl::string_view flag) {
    auto [it, inserted] =
        index_.try_emplace(absl::AsciiStrToLower(flag), order_.size());
    if (inserted) order_.emplace_back(flag);
  }
  void Remove(absl::string_view flag) {
    auto it = index_.find(absl::AsciiStrToLower(flag));
    if (it == index_.end()) return;
    order_[it->second].clear();  // a tombstone: a valid flag is never empty
    index_.erase(it);
  }
  size_t size() const { return index_.size(); }
  bool empty() const { return index_.empty(); }
  // The flags in order; the set is left empty.
  std::vector<std::string> Take() {
    std::erase_if(order_, [](const std::string& f) { return f.empty(); });
    index_.clear();
    return std::exchange(order_, {});
  }
  // Visits the flags in order.
  template <typename F>
  void ForEach(F f) const {
    for (const std::string& flag : order_) {
      if (!flag.empty()) f(flag);
    }
  }

 private:
  std::vector<std::string> order_;
  // Lower case -> index in order_, of the flags present.
  absl::flat_hash_map<std::string, size_t> index_;
};

// Per message: what one POST says about its flags.
struct FlagTrack {
  bool base_known = false;
  FlagSet full;            // valid when base_known
  FlagSet added, removed;  // deltas while !base_known
  bool changed = false;
  size_t event_index = 0;  // placeholder in the event list, when changed
};

class Parser {
 public:
  explicit Parser(const StoreNotificationLimits& limits) : limits_(limits) {}

  std::optional<Refusal> Parse(absl::string_view json, StoreNotification* n);

 private:
  std::optional<Refusal> CheckUser(absl::string_view user) const;
  std::optional<Refusal> CheckMailbox(absl::string_view name,
                                      absl::string_view what) const;
  std::optional<Refusal> ReadStatus(const Value& doc);
  // Adds the valid flags of array `name` of `e` (if present) to `out`,
  // without \Recent. *present: the array exists.
  std::optional<Refusal> AddFlags(const Value& e, const char* name,
                                  FlagSet* out, bool* present = nullptr) const;
  std::optional<Refusal> Event(const Value& e, StoreNotification* n);
  void Finish(StoreNotification* n);

  std::string Where(absl::string_view field) const {
    return absl::StrCat("event ", event_number_, ": ", field);
  }

  const StoreNotificationLimits& limits_;
  size_t event_number_ = 0;
  // Mailbox -> HIGHESTMODSEQ after the transaction.
  std::map<std::string, uint64_t, std::less<>> modseqs_;
  using Key = std::tuple<std::string, uint32_t, uint32_t>;
  std::map<Key, FlagTrack> tracks_;
};

std::optional<Refusal> Parser::CheckUser(absl::string_view user) const {
  if (user.empty()) return Refuse(IntakeReject::kBadUser, "empty user");
  if (user.size() > limits_.max_user_bytes) {
    return Refuse(
        IntakeReject::kUserTooLong,
        absl::StrCat("user longer than ", limits_.max_user_bytes, " bytes"));
  }
  // The user is a routing key and appears in logs: no control characters.
  if (!imap::IsMailboxName(user, limits_.max_user_bytes)) {
    return Refuse(IntakeReject::kBadUser, "user with control characters");
  }
  return std::nullopt;
}

std::optional<Refusal> Parser::CheckMailbox(absl::string_view name,
                                            absl::string_view what) const {
  if (name.size() > limits_.max_mailbox_bytes) {
    return Refuse(IntakeReject::kMailboxTooLong,
                  absl::StrCat(what, " longer than ", limits_.max_mailbox_bytes,
                               " bytes"));
  }
  if (!imap::IsMailboxName(name, limits_.max_mailbox_bytes)) {
    return Refuse(IntakeReject::kBadMailbox,
                  absl::StrCat(what, " is not a mailbox name"));
  }
  return std::nullopt;
}

std::optional<Refusal> Parser::ReadStatus(const Value& doc) {
  auto status_it = doc.FindMember("status");
  if (status_it == doc.MemberEnd() || !status_it->value.IsObject())
    return std::nullopt;
  const Value& status = status_it->value;
  if (status.MemberCount() > limits_.max_status_mailboxes) {
    return Refuse(IntakeReject::kTooManyMailboxes,
                  absl::StrCat("more than ", limits_.max_status_mailboxes,
                               " mailboxes in status"));
  }
  for (const auto& box : status.GetObject()) {
    const absl::string_view name(box.name.GetString(),
                                 box.name.GetStringLength());
    if (auto bad = CheckMailbox(name, "status mailbox")) return bad;
    // The store's Lua leaves a mailbox out (null) when its status failed.
    if (!box.value.IsObject()) continue;
    auto m = box.value.FindMember("highestmodseq");
    if (m == box.value.MemberEnd()) continue;
    std::optional<uint64_t> modseq = UintOf(m->value);
    if (!modseq) return Refuse(IntakeReject::kBadField, "status highestmodseq");
    modseqs_[std::string(name)] = *modseq;
  }
  return std::nullopt;
}

std::optional<Refusal> Parser::AddFlags(const Value& e, const char* name,
                                        FlagSet* out, bool* present) const {
  auto it = e.FindMember(name);
  if (present != nullptr) *present = it != e.MemberEnd() && it->value.IsArray();
  if (it == e.MemberEnd() || it->value.IsNull()) return std::nullopt;
  // dkjson encodes an empty Lua table as [] and cjson as {}: accept both as
  // empty.
  if (it->value.IsObject() && it->value.MemberCount() == 0) return std::nullopt;
  if (!it->value.IsArray()) {
    return Refuse(IntakeReject::kBadField,
                  Where(absl::StrCat(name, " is not an array")));
  }
  if (it->value.Size() > limits_.max_flags) {
    return Refuse(
        IntakeReject::kTooManyFlags,
        Where(absl::StrCat("more than ", limits_.max_flags, " ", name)));
  }
  for (const Value& f : it->value.GetArray()) {
    if (!f.IsString()) {
      return Refuse(IntakeReject::kBadFlag,
                    Where(absl::StrCat(name, ": not a string")));
    }
    const absl::string_view flag(f.GetString(), f.GetStringLength());
    if (flag.size() > limits_.max_flag_bytes) {
      return Refuse(IntakeReject::kFlagTooLong,
                    Where(absl::StrCat(name, ": longer than ",
                                       limits_.max_flag_bytes, " bytes")));
    }
    // RFC 3501 flag syntax: whatever is let through here is written into FETCH
    // responses, so ")", CRLF, spaces, quotes ... must never pass.
    if (!imap::IsFlag(flag)) {
      return Refuse(IntakeReject::kBadFlag,
                    Where(absl::StrCat(name, ": not a flag")));
    }
    if (!IsRecent(flag)) out->Add(flag);
  }
  if (out->size() > limits_.max_flags) {
    return Refuse(
        IntakeReject::kTooManyFlags,
        Where(absl::StrCat("more than ", limits_.max_flags, " flags")));
  }
  return std::nullopt;
}

std::optional<Refusal> Parser::Parse(absl::string_view json,
                                     StoreNotification* n) {
  rapidjson::Document doc;
  // Iterative: a deeply nested body cannot exhaust the shard's stack. Validated
  // encoding: every string is UTF-8 (a \u escape cannot make a lone surrogate).
  doc.Parse<rapidjson::kParseIterativeFlag |
            rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  if (doc.HasParseError()) {
    return Refuse(
        IntakeReject::kBadJson,
        absl::StrCat("JSON error at offset ", doc.GetErrorOffset(), ": ",
                     rapidjson::GetParseError_En(doc.GetParseError())));
  }
  if (!doc.IsObject())
    return Refuse(IntakeReject::kBadJson, "not a JSON object");
  std::optional<absl::string_view> user = StringField(doc, "user");
  if (!user) return Refuse(IntakeReject::kBadUser, "no user");
  if (auto bad = CheckUser(*user)) return bad;
  n->user = std::string(*user);
  auto service_it = doc.FindMember("service");
  if (service_it != doc.MemberEnd()) {
    std::optional<absl::string_view> service = StringField(doc, "service");
    if (!service || service->size() > limits_.max_service_bytes ||
        (!service->empty() &&
         !imap::IsMailboxName(*service, limits_.max_service_bytes))) {
      return Refuse(IntakeReject::kBadField, "service");
    }
    n->service = std::string(*service);
  }
  auto events_it = doc.FindMember("events");
  if (events_it == doc.MemberEnd() || !events_it->value.IsArray()) {
    return Refuse(IntakeReject::kBadField, "no events");
  }
  if (events_it->value.Size() > limits_.max_events) {
    return Refuse(IntakeReject::kTooManyEvents,
                  absl::StrCat("more than ", limits_.max_events, " events"));
  }
  if (auto bad = ReadStatus(doc)) return bad;
  for (const Value& e : events_it->value.GetArray()) {
    if (auto bad = Event(e, n)) return bad;
    ++event_number_;
  }
  Finish(n);
  return std::nullopt;
}

std::optional<Refusal> Parser::Event(const Value& e, StoreNotification* n) {
  if (!e.IsObject())
    return Refuse(IntakeReject::kBadField, Where("not an object"));
  std::optional<absl::string_view> name = StringField(e, "event");
  std::optional<absl::string_view> mailbox = StringField(e, "mailbox");
  if (!name || !mailbox)
    return Refuse(IntakeReject::kBadField, Where("no event/mailbox"));
  if (auto bad = CheckMailbox(*mailbox, Where("mailbox"))) return bad;

  const bool is_new = *name == "MessageNew" || *name == "MessageAppend";
  const bool is_expunge = *name == "MessageExpunge";
  const bool is_set = *name == "FlagsSet";
  const bool is_clear = *name == "FlagsClear";
  session::StoreEvent ev;
  ev.folder = std::string(*mailbox);
  if (is_new || is_expunge || is_set || is_clear) {
    std::optional<uint64_t> uid = UintField(e, "uid");
    std::optional<uint64_t> uidvalidity = UintField(e, "uidvalidity");
    constexpr uint64_t kMax = std::numeric_limits<uint32_t>::max();
    if (!uid || *uid == 0 || *uid > kMax || !uidvalidity || *uidvalidity == 0 ||
        *uidvalidity > kMax) {
      return Refuse(IntakeReject::kBadUid, Where("no valid uid/uidvalidity"));
    }
    ev.uid = static_cast<uint32_t>(*uid);
    ev.uidvalidity = static_cast<uint32_t>(*uidvalidity);
    auto m = modseqs_.find(*mailbox);
    ev.modseq = m == modseqs_.end() ? 0 : m->second;
  }

  if (is_new) {
    ev.kind = session::EventKind::kNew;
    FlagSet flags;
    if (auto bad = AddFlags(e, "flags", &flags)) return bad;
    if (auto bad = AddFlags(e, "keywords", &flags)) return bad;
    FlagTrack& t = tracks_[Key(ev.folder, ev.uidvalidity, ev.uid)];
    t.base_known = true;
    t.full = FlagSet();
    flags.ForEach([&](const std::string& f) { t.full.Add(f); });
    t.added = FlagSet();
    t.removed = FlagSet();
    ev.flags = flags.Take();
    ev.flags_known = true;  // MessageNew lists the flags and keywords
    if (limits_.keep_headlines) {
      // Dovecot's "subject" is decoded already, its "from" the raw header
      // (shared/dev/dovecot-push.md); bounded by MakeHeadline.
      std::optional<absl::string_view> from = StringField(e, "from");
      if (!from) from = StringField(e, "from_address");
      ev.headline = session::MakeHeadline(
          StringField(e, "subject").value_or(""), from.value_or(""),
          /*subject_decoded=*/true);
    }
    n->events.push_back(std::move(ev));
  } else if (is_expunge) {
    ev.kind = session::EventKind::kExpunge;
    n->events.push_back(std::move(ev));
  } else if (is_set || is_clear) {
    FlagSet delta;
    if (auto bad = AddFlags(e, "flags", &delta)) return bad;
    if (auto bad = AddFlags(e, "keywords", &delta)) return bad;
    FlagTrack& t = tracks_[Key(ev.folder, ev.uidvalidity, ev.uid)];
    if (is_clear) {
      // flags_old/keywords_old are validated but never taken for the whole
      // list before the change: Dovecot fills flags_old only when system
      // flags change and keywords_old only when keywords do, and sends the
      // other one as [] (chaos defect 3). Only a MessageNew/MessageAppend of
      // the same POST gives the whole list; otherwise the change is resolved
      // from the store (StoreEvent::resolve).
      FlagSet old;
      if (auto bad = AddFlags(e, "flags_old", &old)) return bad;
      if (auto bad = AddFlags(e, "keywords_old", &old)) return bad;
    }
    if (delta.empty()) {  // noise (\Recent-only clears, empty sets)
      ++n->ignored;
      return std::nullopt;
    }
    delta.ForEach([&](const std::string& flag) {
      if (t.base_known) {
        is_set ? t.full.Add(flag) : t.full.Remove(flag);
      } else if (is_set) {
        t.added.Add(flag);
        t.removed.Remove(flag);
      } else {
        t.removed.Add(flag);
        t.added.Remove(flag);
      }
    });
    if (t.full.size() > limits_.max_flags ||
        t.added.size() > limits_.max_flags ||
        t.removed.size() > limits_.max_flags) {
      return Refuse(
          IntakeReject::kTooManyFlags,
          Where(absl::StrCat("more than ", limits_.max_flags, " flags")));
    }
    if (!t.changed) {
      t.changed = true;
      t.event_index = n->events.size();
      ev.kind = session::EventKind::kFlags;
      n->events.push_back(std::move(ev));
    } else {
      n->events[t.event_index].modseq = ev.modseq;
    }
  } else if (*name == "MailboxCreate" || *name == "MailboxDelete") {
    ev.kind = *name == "MailboxCreate" ? session::EventKind::kFolderCreated
                                       : session::EventKind::kFolderDeleted;
    n->events.push_back(std::move(ev));
  } else if (*name == "MailboxRename") {
    std::optional<absl::string_view> old = StringField(e, "mailbox_old");
    if (!old)
      return Refuse(IntakeReject::kBadField,
                    Where("rename without mailbox_old"));
    if (auto bad = CheckMailbox(*old, Where("mailbox_old"))) return bad;
    ev.kind = session::EventKind::kFolderRenamed;
    ev.new_folder = std::move(ev.folder);
    ev.folder = std::string(*old);
    n->events.push_back(std::move(ev));
  } else {
    ++n->ignored;  // MessageRead, MessageTrash, Mailbox(Un)Subscribe, unknown
  }
  return std::nullopt;
}

// Fills the kFlags placeholders, or marks them to resolve from the store (in
// place, so that they keep their order among the POST's events) and lists
// them as deltas.
void Parser::Finish(StoreNotification* n) {
  std::vector<std::pair<size_t, FlagDelta>> deltas;
  for (auto& [key, t] : tracks_) {
    if (!t.changed) continue;
    session::StoreEvent& ev = n->events[t.event_index];
    if (t.base_known) {
      ev.flags = t.full.Take();
    } else {
      FlagDelta d;
      d.folder = ev.folder;
      d.uidvalidity = ev.uidvalidity;
      d.uid = ev.uid;
      d.added = t.added.Take();
      d.removed = t.removed.Take();
      d.modseq = ev.modseq;
      deltas.emplace_back(t.event_index, std::move(d));
      ev.resolve = true;
    }
  }
  if (!deltas.empty()) {
    std::sort(deltas.begin(), deltas.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [index, d] : deltas) n->flag_deltas.push_back(std::move(d));
  }
}

}  // namespace

absl::StatusOr<StoreNotification> ParseStoreNotification(
    absl::string_view json, const StoreNotificationLimits& limits,
    IntakeReject* reason) {
  StoreNotification n;
  Parser parser(limits);
  if (std::optional<Refusal> refused = parser.Parse(json, &n)) {
    if (reason != nullptr) *reason = refused->reason;
    return absl::InvalidArgumentError(refused->message);
  }
  return n;
}

}  // namespace pimap::store
