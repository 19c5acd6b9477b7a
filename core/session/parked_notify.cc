// ParkedNotify (parked_notify.h): STATUS and LIST lines for a parked NOTIFY
// client, in Dovecot 2.3's forms.
#include "core/session/parked_notify.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/imap/writer.h"

namespace pimap::session {
namespace {

bool SameMailbox(absl::string_view a, absl::string_view b) {
  if (absl::EqualsIgnoreCase(a, "INBOX")) return absl::EqualsIgnoreCase(b, a);
  return a == b;
}

}  // namespace

ParkedNotify::ParkedNotify(NotifySpec spec, std::string selected,
                           char delimiter, bool condstore)
    : spec_(std::move(spec)),
      selected_(std::move(selected)),
      delimiter_(delimiter),
      condstore_(condstore) {}

void ParkedNotify::Queue(const std::string& folder, const Want& want) {
  auto it = pending_.find(folder);
  if (it == pending_.end()) {
    if (pending_.size() >= kMaxPending) {
      overflowed_ = true;
      return;
    }
    it = pending_.emplace(folder, Want{}).first;
  }
  it->second.messages |= want.messages;
  it->second.unseen |= want.unseen;
  it->second.uidvalidity |= want.uidvalidity;
}

std::string ParkedNotify::ListLine(const StoreEvent& e) const {
  // The store's own line (the watch's NOTIFY) is exactly what it would have
  // told this client.
  if (!e.raw.empty()) return absl::StrCat(e.raw, "\r\n");
  if (delimiter_ == 0) return {};
  std::string out = "* LIST (";
  if (e.kind == EventKind::kFolderDeleted) out += "\\NonExistent";
  absl::StrAppend(&out, ") \"", std::string(1, delimiter_), "\" ");
  if (e.kind == EventKind::kFolderRenamed) {
    imap::AppendAstring(&out, e.new_folder);
    out += " (\"OLDNAME\" (";
    imap::AppendAstring(&out, e.folder);
    out += "))";
  } else {
    imap::AppendAstring(&out, e.folder);
  }
  out += "\r\n";
  return out;
}

std::string ParkedNotify::Apply(const StoreEvent& e) {
  switch (e.kind) {
    case EventKind::kFolderCreated:
    case EventKind::kFolderDeleted:
    case EventKind::kFolderRenamed: {
      const std::string& name =
          e.kind == EventKind::kFolderRenamed ? e.new_folder : e.folder;
      if (e.kind == EventKind::kFolderCreated && created_.size() < kMaxPending)
        created_.insert(name);
      if (e.kind != EventKind::kFolderCreated) unseen_told_.erase(e.folder);
      if (SameMailbox(e.folder, selected_)) return {};  // ParkedMailbox's BYE
      const bool told =
          spec_.EventsFor(e.folder, delimiter_).mailbox_name ||
          (e.kind == EventKind::kFolderRenamed &&
           spec_.EventsFor(e.new_folder, delimiter_).mailbox_name);
      return told ? ListLine(e) : std::string();
    }
    case EventKind::kNew:
    case EventKind::kExpunge:
    case EventKind::kFlags:
      break;
  }
  if (e.folder.empty() || SameMailbox(e.folder, selected_)) return {};
  const NotifyEvents events = spec_.EventsFor(e.folder, delimiter_);
  Want want;
  if (e.kind == EventKind::kFlags) {
    // Only \Seen moves a number STATUS reports; which flag changed is not
    // known here, so the answer is compared with the last one told.
    if (!events.flags) return {};
    want.unseen = true;
  } else {
    if (!events.messages) return {};
    want.messages = true;
    want.uidvalidity = created_.erase(e.folder) > 0;
  }
  Queue(e.folder, want);
  return {};
}

std::vector<std::string> ParkedNotify::TakeStatusCommands() {
  std::vector<std::string> commands;
  for (auto& [folder, want] : pending_) {
    std::string c = "STATUS ";
    imap::AppendAstring(&c, folder);
    absl::StrAppend(&c, " (MESSAGES UIDNEXT UIDVALIDITY UNSEEN",
                    condstore_ ? " HIGHESTMODSEQ)" : ")");
    commands.push_back(std::move(c));
    Want& flight = in_flight_[folder];
    flight.messages |= want.messages;
    flight.unseen |= want.unseen;
    flight.uidvalidity |= want.uidvalidity;
  }
  pending_.clear();
  return commands;
}

std::string ParkedNotify::OnResponse(const imap::Response& r) {
  if (r.kind != imap::Response::Kind::kUntagged || r.name != "STATUS" ||
      r.args.size() < 2 || !r.args[0].is_astring() ||
      r.args[1].type != imap::Arg::Type::kList) {
    return {};
  }
  std::string folder = r.args[0].value;
  if (absl::EqualsIgnoreCase(folder, "INBOX")) folder = "INBOX";
  auto it = in_flight_.find(folder);
  if (it == in_flight_.end()) return {};
  const Want want = it->second;
  in_flight_.erase(it);
  // name -> value as the store answered.
  absl::flat_hash_map<std::string, std::string> items;
  const std::vector<imap::Arg>& list = r.args[1].children;
  for (size_t i = 0; i + 1 < list.size(); i += 2) {
    items[absl::AsciiStrToUpper(list[i].value)] = list[i + 1].value;
  }
  std::string body;
  auto add = [&](absl::string_view name) {
    auto v = items.find(name);
    if (v == items.end()) return;
    if (!body.empty()) body += ' ';
    absl::StrAppend(&body, name, " ", v->second);
  };
  uint32_t unseen = 0;
  const bool unseen_known =
      items.contains("UNSEEN") && absl::SimpleAtoi(items["UNSEEN"], &unseen);
  if (want.messages) {
    add("MESSAGES");
    add("UIDNEXT");
    if (want.uidvalidity) add("UIDVALIDITY");
    add("UNSEEN");
    if (condstore_) add("HIGHESTMODSEQ");
  } else if (want.unseen && unseen_known) {
    auto told = unseen_told_.find(folder);
    if (told != unseen_told_.end() && told->second == unseen) return {};
    add("UNSEEN");
  }
  if (unseen_known) {
    if (unseen_told_.size() >= kMaxPending) unseen_told_.clear();
    unseen_told_[folder] = unseen;
  }
  if (body.empty()) return {};
  std::string out = "* STATUS ";
  imap::AppendAstring(&out, folder);
  absl::StrAppend(&out, " (", body, ")\r\n");
  return out;
}

size_t ParkedNotify::MemoryBytes() const {
  size_t n = sizeof(*this);
  for (const auto& [k, v] : pending_) n += k.capacity() + sizeof(v) + 16;
  for (const auto& [k, v] : in_flight_) n += k.capacity() + sizeof(v) + 16;
  for (const auto& [k, v] : unseen_told_) n += k.capacity() + sizeof(v) + 16;
  for (const auto& k : created_) n += k.capacity() + 16;
  return n;
}

}  // namespace pimap::session
