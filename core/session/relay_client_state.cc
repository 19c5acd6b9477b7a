// What a relayed client knows (relay_client_state.h), read off the stream.
#include "core/session/relay_client_state.h"

#include <algorithm>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/imap/limits.h"

namespace pimap::session {
namespace {

// Commands whose effect on the session is nothing a new link must repeat (the
// store's data changes, not the session's state), or is tracked here.
bool IsStateless(absl::string_view name) {
  static constexpr absl::string_view kNames[] = {
      "APPEND",      "CAPABILITY",  "CHECK",        "COPY",   "CREATE",
      "DELETE",      "DELETEACL",   "EXPUNGE",      "FETCH",  "GETACL",
      "GETMETADATA", "GETQUOTA",    "GETQUOTAROOT", "ID",     "IDLE",
      "LIST",        "LISTRIGHTS",  "LOGOUT",       "LSUB",   "MOVE",
      "MYRIGHTS",    "NAMESPACE",   "NOOP",         "RENAME", "SEARCH",
      "SETACL",      "SETMETADATA", "SETQUOTA",     "SORT",   "STATUS",
      "STORE",       "SUBSCRIBE",   "THREAD",       "UID",    "UNSUBSCRIBE",
      "XLIST"};
  return absl::c_linear_search(kNames, name);
}

// Whether `line` has `word` (upper-case) as an atom of its own, outside
// quoted strings: `SEARCH SUBJECT "modseq"` or a mailbox named Condstore2 do
// not count. No allocation (runs for every relayed command).
bool ContainsWord(absl::string_view line, absl::string_view word) {
  auto separator = [](char c) {
    return c == ' ' || c == '(' || c == ')' || c == '[' || c == ']' ||
           c == '<' || c == '>' || c == '"';
  };
  size_t i = 0;
  while (i < line.size()) {
    if (line[i] == '"') {  // skip a quoted string
      for (++i; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\') ++i;
      }
      ++i;
      continue;
    }
    if (separator(line[i])) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < line.size() && !separator(line[end])) ++end;
    if (absl::EqualsIgnoreCase(line.substr(i, end - i), word)) return true;
    i = end;
  }
  return false;
}

// "(\Seen \Answered)" -> {"\Seen", "\Answered"}; false if not a list.
bool ParseFlagList(absl::string_view text, std::vector<std::string>* out) {
  text = absl::StripLeadingAsciiWhitespace(text);
  if (!absl::ConsumePrefix(&text, "(")) return false;
  const size_t close = text.find(')');
  if (close == absl::string_view::npos) return false;
  out->clear();
  for (absl::string_view f :
       absl::StrSplit(text.substr(0, close), ' ', absl::SkipEmpty())) {
    if (out->size() >= ParkedMailbox::kMaxKeywords) break;
    out->emplace_back(f);
  }
  return true;
}

// The resp-text-code of a status response's text ("[UIDVALIDITY 3] ok" ->
// "UIDVALIDITY 3"), or empty.
absl::string_view CodeOf(absl::string_view text) {
  if (!absl::ConsumePrefix(&text, "[")) return {};
  const size_t end = text.find(']');
  return end == absl::string_view::npos ? absl::string_view()
                                        : text.substr(0, end);
}

// The mailbox argument of "tag SELECT mailbox [(params)]", as the store
// spells it ("inbox" in any case is INBOX); empty when it cannot be read.
std::string MailboxOf(absl::string_view line, bool* condstore) {
  const imap::ParserLimits limits;
  imap::CommandAssembler assembler(limits, limits.max_line_bytes);
  if (!assembler.AddLine(line, nullptr).ok()) return {};
  absl::StatusOr<imap::Command> command = assembler.Finish();
  if (!command.ok() || command->args.empty() ||
      !command->args[0].is_astring()) {
    return {};
  }
  if (command->args.size() > 1) {
    for (const imap::Arg& param : command->args[1].children) {
      if (absl::EqualsIgnoreCase(param.value, "CONDSTORE")) *condstore = true;
    }
  }
  std::string name = command->args[0].value;
  if (absl::EqualsIgnoreCase(name, "INBOX")) name = "INBOX";
  return name;
}

}  // namespace

void RelayClientState::OnCommand(const imap::CommandHead& head,
                                 absl::string_view line, bool has_literal) {
  // RFC 7162 section 3.1: these make the server report MODSEQ from then on,
  // exactly as ENABLE CONDSTORE would.
  if (!condstore_ &&
      (ContainsWord(line, "MODSEQ") || ContainsWord(line, "CHANGEDSINCE") ||
       ContainsWord(line, "CONDSTORE"))) {
    Enable("CONDSTORE");
  }
  Pending p;
  p.tag = head.tag;
  if (head.name == "SELECT" || head.name == "EXAMINE") {
    p.kind = head.name == "SELECT" ? Kind::kSelect : Kind::kExamine;
    bool condstore = false;
    // A mailbox sent as a literal is not read here: the session is then
    // sticky until a SELECT the relay can read.
    if (!has_literal) p.folder = MailboxOf(line, &condstore);
    if (condstore) Enable("CONDSTORE");
    opening_ = Opening{};
    opening_.read_only = p.kind == Kind::kExamine;
  } else if (head.name == "CLOSE" || head.name == "UNSELECT") {
    p.kind = Kind::kUnselect;
  } else if (head.name == "ENABLE") {
    p.kind = Kind::kEnable;
  } else if (head.name == "NOTIFY") {
    absl::string_view args = line;
    // "tag NOTIFY args": the arguments follow the second space.
    for (int i = 0; i < 2 && !args.empty(); ++i) {
      const size_t space = args.find(' ');
      args = space == absl::string_view::npos ? absl::string_view()
                                              : args.substr(space + 1);
    }
    absl::StatusOr<NotifySpec> spec = has_literal
                                          ? absl::UnimplementedError("literal")
                                          : NotifySpec::Parse(args);
    if (spec.ok()) {
      p.kind = Kind::kNotify;
      p.notify = std::move(*spec);
    } else if (spec.status().code() == absl::StatusCode::kInvalidArgument) {
      p.kind = Kind::kNotifyUnknown;  // the store will refuse it, most likely
    } else {
      sticky_session_ = true;  // what a parked client could not be told
      return;
    }
  } else {
    if (!IsStateless(head.name)) {
      sticky_session_ = true;  // COMPRESS upstream, an extension
    } else if ((head.name == "SEARCH" || head.name == "UID" ||
                head.name == "SORT" || head.name == "THREAD") &&
               (ContainsWord(line, "SAVE") || ContainsWord(line, "UPDATE") ||
                ContainsWord(line, "CONTEXT"))) {
      // RFC 5182's "$" and RFC 5267's updating searches live in the store's
      // session: another link would not have them.
      sticky_selected_ = true;
    }
    return;
  }
  if (pending_.size() >= kMaxPending) {
    sticky_session_ = true;
    return;
  }
  pending_.push_back(std::move(p));
}

void RelayClientState::OnResponseLine(absl::string_view line) {
  if (absl::ConsumePrefix(&line, "* ")) {
    if (absl::ConsumePrefix(&line, "OK ")) {
      OnUntaggedStatus(CodeOf(line));
    } else if (absl::ConsumePrefix(&line, "FLAGS ")) {
      std::vector<std::string>* to = selecting() ? &opening_.flags : &flags_;
      if (!ParseFlagList(line, to)) to->clear();
    } else if (absl::ConsumePrefix(&line, "LIST (")) {
      // * LIST (attributes) "d" name: the delimiter a synthesised LIST line
      // of a parked NOTIFY client needs.
      const size_t close = line.find(") \"");
      if (close != absl::string_view::npos && close + 4 < line.size() &&
          line[close + 4] == '"') {
        delimiter_ = line[close + 3];
      }
    } else if (absl::ConsumePrefix(&line, "ENABLED")) {
      for (absl::string_view atom :
           absl::StrSplit(line, ' ', absl::SkipEmpty())) {
        Enable(atom);
      }
    }
    return;
  }
  if (pending_.empty()) return;
  const size_t space = line.find(' ');
  if (space == absl::string_view::npos) return;
  absl::string_view tag = line.substr(0, space);
  absl::string_view rest = line.substr(space + 1);
  const size_t status_end = rest.find(' ');
  absl::string_view status = rest.substr(0, status_end);
  absl::string_view text =
      status_end == absl::string_view::npos ? "" : rest.substr(status_end + 1);
  OnTagged(tag, status, CodeOf(text));
}

void RelayClientState::OnUntaggedStatus(absl::string_view code) {
  if (code.empty()) return;
  const size_t space = code.find(' ');
  absl::string_view name = code.substr(0, space);
  absl::string_view value =
      space == absl::string_view::npos ? "" : code.substr(space + 1);
  if (name == "UIDVALIDITY") {
    uint32_t v = 0;
    if (selecting() && absl::SimpleAtoi(value, &v)) opening_.uidvalidity = v;
  } else if (name == "HIGHESTMODSEQ") {
    uint64_t v = 0;
    if (!absl::SimpleAtoi(value, &v)) return;
    if (selecting()) {
      opening_.highest_modseq = v;
    } else if (!folder_.empty()) {
      // Sent after the changes it covers (RFC 7162 section 3.2.10).
      highest_modseq_ = std::max(highest_modseq_, v);
    }
  } else if (name == "NOMODSEQ") {
    if (selecting()) opening_.highest_modseq = 0;
  } else if (name == "PERMANENTFLAGS") {
    std::vector<std::string>* to =
        selecting() ? &opening_.permanent_flags : &permanent_flags_;
    if (!ParseFlagList(value, to)) to->clear();
  }
}

void RelayClientState::OnTagged(absl::string_view tag, absl::string_view status,
                                absl::string_view code) {
  auto it =
      absl::c_find_if(pending_, [&](const Pending& p) { return p.tag == tag; });
  if (it == pending_.end()) return;
  const Pending p = std::move(*it);
  pending_.erase(it);
  const bool ok = status == "OK";
  switch (p.kind) {
    case Kind::kSelect:
    case Kind::kExamine:
      // A failed SELECT leaves no mailbox selected (RFC 3501 section 6.3.1).
      folder_.clear();
      sticky_selected_ = false;
      if (!ok) return;
      folder_ = p.folder;
      sticky_selected_ = folder_.empty();  // a mailbox the relay did not read
      uidvalidity_ = opening_.uidvalidity;
      highest_modseq_ = opening_.highest_modseq;
      read_only_ = opening_.read_only || code == "READ-ONLY";
      flags_ = std::move(opening_.flags);
      permanent_flags_ = std::move(opening_.permanent_flags);
      opening_ = Opening{};
      return;
    case Kind::kUnselect:
      if (ok) {
        folder_.clear();
        sticky_selected_ = false;
      }
      return;
    case Kind::kNotify:
      if (!ok) return;
      notify_.reset();
      if (!p.notify->none()) notify_ = std::move(p.notify);
      return;
    case Kind::kNotifyUnknown:
      if (ok) sticky_session_ = true;
      return;
    case Kind::kEnable:
    case Kind::kOther:
      return;
  }
}

void RelayClientState::Enable(absl::string_view atom) {
  std::string upper = absl::AsciiStrToUpper(atom);
  if (upper == "QRESYNC") {
    qresync_ = true;
  } else if (upper == "CONDSTORE") {
    condstore_ = true;
  } else if (upper != "UTF8=ACCEPT" && upper != "IMAP4REV2") {
    // An extension whose session effects ParkedMailbox does not render.
    sticky_session_ = true;
  }
  auto at = std::lower_bound(enabled_.begin(), enabled_.end(), upper);
  if (at == enabled_.end() || *at != upper)
    enabled_.insert(at, std::move(upper));
}

bool RelayClientState::selecting() const {
  return absl::c_any_of(pending_, [](const Pending& p) {
    return p.kind == Kind::kSelect || p.kind == Kind::kExamine;
  });
}

bool RelayClientState::parkable() const {
  // A LIST line for a parked NOTIFY client is the store's own (the watch's)
  // or made with the delimiter: without either it could not be told.
  const bool lists_told = !notify_.has_value() ||
                          !notify_->wants_mailbox_names() || delimiter_ != 0;
  return !folder_.empty() && uidvalidity_ != 0 && !sticky_selected_ &&
         !sticky_session_ && pending_.empty() && lists_told;
}

std::string RelayClientState::LinkProfile() const {
  return absl::StrCat("relay:", absl::StrJoin(enabled_, " "));
}

ParkedClientState RelayClientState::Snapshot() const {
  ParkedClientState s;
  s.folder = folder_;
  s.uidvalidity = uidvalidity_;
  s.highest_modseq = condstore() ? highest_modseq_ : 0;
  s.condstore = condstore();
  s.qresync = qresync_;
  s.read_only = read_only_;
  s.mailbox_flags = flags_;
  s.permanent_flags = permanent_flags_;
  s.delimiter = delimiter_;
  if (notify_.has_value()) {
    s.report_messages = notify_->selected().messages;
    s.report_flags = notify_->selected().flags;
  }
  return s;
}

}  // namespace pimap::session
