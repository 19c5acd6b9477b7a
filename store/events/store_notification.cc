// JSON notification -> typed store events (mapping rules in the header).
#include "store/events/store_notification.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"

namespace pimap::store {

namespace {

using rapidjson::Value;

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("store notification: ", why));
}

std::optional<absl::string_view> StringField(const Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return std::nullopt;
  return absl::string_view(it->value.GetString(), it->value.GetStringLength());
}

// A non-negative integer, also when a sender encoded it as an integral float.
std::optional<uint64_t> UintField(const Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd()) return std::nullopt;
  const Value& v = it->value;
  if (v.IsUint64()) return v.GetUint64();
  if (v.IsDouble()) {
    const double d = v.GetDouble();
    if (d >= 0 && d < 18446744073709551616.0 && std::floor(d) == d) {
      return static_cast<uint64_t>(d);
    }
  }
  return std::nullopt;
}

bool IsRecent(absl::string_view flag) { return absl::EqualsIgnoreCase(flag, "\\Recent"); }

// Appends the strings of array `name` (if present) to `out`, without \Recent and
// without duplicates (flags compare case-insensitively). False if `name` exists
// but is not an array of strings.
bool AppendFlags(const Value& object, const char* name, std::vector<std::string>* out,
                 bool* present = nullptr) {
  auto it = object.FindMember(name);
  if (present != nullptr) *present = it != object.MemberEnd() && it->value.IsArray();
  if (it == object.MemberEnd() || it->value.IsNull()) return true;
  // dkjson encodes an empty Lua table as [] and cjson as {}: accept both as empty.
  if (it->value.IsObject() && it->value.MemberCount() == 0) return true;
  if (!it->value.IsArray()) return false;
  for (const Value& f : it->value.GetArray()) {
    if (!f.IsString()) return false;
    absl::string_view flag(f.GetString(), f.GetStringLength());
    if (flag.empty() || IsRecent(flag)) continue;
    bool dup = false;
    for (const std::string& have : *out) dup = dup || absl::EqualsIgnoreCase(have, flag);
    if (!dup) out->emplace_back(flag);
  }
  return true;
}

void AddFlag(std::vector<std::string>* list, const std::string& flag) {
  for (const std::string& have : *list) {
    if (absl::EqualsIgnoreCase(have, flag)) return;
  }
  list->push_back(flag);
}

void RemoveFlag(std::vector<std::string>* list, const std::string& flag) {
  std::erase_if(*list, [&](const std::string& f) { return absl::EqualsIgnoreCase(f, flag); });
}

// Per message: what one POST says about its flags.
struct FlagTrack {
  bool base_known = false;
  std::vector<std::string> full;  // valid when base_known
  std::vector<std::string> added, removed;  // deltas while !base_known
  bool changed = false;
  size_t event_index = 0;  // placeholder in the event list, when changed
};

}  // namespace

absl::StatusOr<StoreNotification> ParseStoreNotification(absl::string_view json) {
  rapidjson::Document doc;
  // Iterative: a deeply nested body cannot exhaust the shard's stack.
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(
      json.data(), json.size());
  if (doc.HasParseError()) {
    return Bad(absl::StrCat("JSON error at offset ", doc.GetErrorOffset(), ": ",
                            rapidjson::GetParseError_En(doc.GetParseError())));
  }
  if (!doc.IsObject()) return Bad("not a JSON object");
  StoreNotification n;
  std::optional<absl::string_view> user = StringField(doc, "user");
  if (!user || user->empty()) return Bad("no user");
  n.user = std::string(*user);
  if (auto service = StringField(doc, "service")) n.service = std::string(*service);
  auto events_it = doc.FindMember("events");
  if (events_it == doc.MemberEnd() || !events_it->value.IsArray()) return Bad("no events");

  // Mailbox -> HIGHESTMODSEQ after the transaction.
  std::map<std::string, uint64_t, std::less<>> modseqs;
  auto status_it = doc.FindMember("status");
  if (status_it != doc.MemberEnd() && status_it->value.IsObject()) {
    for (const auto& box : status_it->value.GetObject()) {
      if (!box.value.IsObject()) continue;
      if (auto m = UintField(box.value, "highestmodseq")) {
        modseqs[std::string(box.name.GetString(), box.name.GetStringLength())] = *m;
      }
    }
  }
  auto modseq_of = [&](absl::string_view box) -> uint64_t {
    auto it = modseqs.find(box);
    return it == modseqs.end() ? 0 : it->second;
  };

  using Key = std::tuple<std::string, uint32_t, uint32_t>;
  std::map<Key, FlagTrack> tracks;

  for (const Value& e : events_it->value.GetArray()) {
    if (!e.IsObject()) return Bad("event is not an object");
    std::optional<absl::string_view> name = StringField(e, "event");
    std::optional<absl::string_view> mailbox = StringField(e, "mailbox");
    if (!name || !mailbox || mailbox->empty()) return Bad("event without event/mailbox");

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
        return Bad(absl::StrCat(*name, " without a valid uid/uidvalidity"));
      }
      ev.uid = static_cast<uint32_t>(*uid);
      ev.uidvalidity = static_cast<uint32_t>(*uidvalidity);
      ev.modseq = modseq_of(*mailbox);
    }

    if (is_new) {
      ev.kind = session::EventKind::kNew;
      if (!AppendFlags(e, "flags", &ev.flags) || !AppendFlags(e, "keywords", &ev.flags)) {
        return Bad("malformed flags");
      }
      FlagTrack& t = tracks[Key(ev.folder, ev.uidvalidity, ev.uid)];
      t.base_known = true;
      t.full = ev.flags;
      t.added.clear();
      t.removed.clear();
      n.events.push_back(std::move(ev));
    } else if (is_expunge) {
      ev.kind = session::EventKind::kExpunge;
      n.events.push_back(std::move(ev));
    } else if (is_set || is_clear) {
      std::vector<std::string> delta;
      if (!AppendFlags(e, "flags", &delta) || !AppendFlags(e, "keywords", &delta)) {
        return Bad("malformed flags");
      }
      FlagTrack& t = tracks[Key(ev.folder, ev.uidvalidity, ev.uid)];
      if (is_clear) {
        bool have_old = false, have_old_kw = false;
        std::vector<std::string> old;
        if (!AppendFlags(e, "flags_old", &old, &have_old) ||
            !AppendFlags(e, "keywords_old", &old, &have_old_kw)) {
          return Bad("malformed flags_old");
        }
        if (have_old && have_old_kw) {  // the whole list just before this change
          t.base_known = true;
          t.full = std::move(old);
          t.added.clear();
          t.removed.clear();
        }
      }
      if (delta.empty()) {  // noise (\Recent-only clears, empty sets)
        ++n.ignored;
        continue;
      }
      for (const std::string& flag : delta) {
        if (t.base_known) {
          is_set ? AddFlag(&t.full, flag) : RemoveFlag(&t.full, flag);
        } else if (is_set) {
          AddFlag(&t.added, flag);
          RemoveFlag(&t.removed, flag);
        } else {
          AddFlag(&t.removed, flag);
          RemoveFlag(&t.added, flag);
        }
      }
      if (!t.changed) {
        t.changed = true;
        t.event_index = n.events.size();
        ev.kind = session::EventKind::kFlags;
        n.events.push_back(std::move(ev));
      } else {
        n.events[t.event_index].modseq = ev.modseq;
      }
    } else if (*name == "MailboxCreate" || *name == "MailboxDelete") {
      ev.kind = *name == "MailboxCreate" ? session::EventKind::kFolderCreated
                                         : session::EventKind::kFolderDeleted;
      n.events.push_back(std::move(ev));
    } else if (*name == "MailboxRename") {
      std::optional<absl::string_view> old = StringField(e, "mailbox_old");
      if (!old || old->empty()) return Bad("MailboxRename without mailbox_old");
      ev.kind = session::EventKind::kFolderRenamed;
      ev.new_folder = std::move(ev.folder);
      ev.folder = std::string(*old);
      n.events.push_back(std::move(ev));
    } else {
      ++n.ignored;  // MessageRead, MessageTrash, Mailbox(Un)Subscribe, unknown
    }
  }

  // Fill the kFlags placeholders, or turn them into deltas.
  std::vector<bool> drop(n.events.size(), false);
  std::vector<std::pair<size_t, FlagDelta>> deltas;
  for (auto& [key, t] : tracks) {
    if (!t.changed) continue;
    session::StoreEvent& ev = n.events[t.event_index];
    if (t.base_known) {
      ev.flags = std::move(t.full);
    } else {
      FlagDelta d;
      d.folder = ev.folder;
      d.uidvalidity = ev.uidvalidity;
      d.uid = ev.uid;
      d.added = std::move(t.added);
      d.removed = std::move(t.removed);
      d.modseq = ev.modseq;
      deltas.emplace_back(t.event_index, std::move(d));
      drop[t.event_index] = true;
    }
  }
  if (!deltas.empty()) {
    std::sort(deltas.begin(), deltas.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [index, d] : deltas) n.flag_deltas.push_back(std::move(d));
    std::vector<session::StoreEvent> kept;
    kept.reserve(n.events.size());
    for (size_t i = 0; i < n.events.size(); ++i) {
      if (!drop[i]) kept.push_back(std::move(n.events[i]));
    }
    n.events = std::move(kept);
  }
  return n;
}

}  // namespace pimap::store
