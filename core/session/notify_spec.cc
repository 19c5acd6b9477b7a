// NOTIFY (RFC 5465 section 8 grammar) as far as a parked client needs it.
#include "core/session/notify_spec.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/imap/command.h"
#include "core/imap/limits.h"

namespace pimap::session {
namespace {

using imap::Arg;

absl::Status Unparkable(absl::string_view what) {
  return absl::UnimplementedError(
      absl::StrCat("NOTIFY asks for ", what, ", which needs the store"));
}

absl::Status Syntax(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("NOTIFY syntax: ", what));
}

std::string Canonical(const std::string& name) {
  return absl::EqualsIgnoreCase(name, "INBOX") ? std::string("INBOX") : name;
}

// `events`: "NONE" or a list of event names (RFC 5465 "events").
absl::StatusOr<NotifyEvents> ParseEvents(const Arg& events, bool selected) {
  NotifyEvents out;
  if (events.type != Arg::Type::kList) {
    if (events.is_astring() && absl::EqualsIgnoreCase(events.value, "NONE")) {
      return out;
    }
    return Syntax("events");
  }
  bool news = false;
  bool expunges = false;
  const std::vector<Arg>& list = events.children;
  for (size_t i = 0; i < list.size(); ++i) {
    const Arg& e = list[i];
    if (e.type != Arg::Type::kAtom) return Syntax("event");
    const std::string name = absl::AsciiStrToLower(e.value);
    if (name == "messagenew") {
      if (i + 1 < list.size() && list[i + 1].type == Arg::Type::kList) {
        // Attributes of each new message: only the store can fetch them.
        return Unparkable("FETCH attributes of new mail");
      }
      news = true;
    } else if (name == "messageexpunge") {
      expunges = true;
    } else if (name == "flagchange") {
      out.flags = true;
    } else if (name == "mailboxname" && !selected) {
      out.mailbox_name = true;
    } else {
      // SubscriptionChange (the subscriptions are the store's session's),
      // AnnotationChange, metadata, extensions.
      return Unparkable(e.value);
    }
  }
  // The store refuses one without the other; no reason to guess here.
  if (news != expunges) return Syntax("MessageNew without MessageExpunge");
  out.messages = news;
  return out;
}

// "mailbox" or "(mailbox ...)" after subtree/mailboxes.
absl::Status ParseNames(const Arg& arg, std::vector<std::string>* names,
                        size_t* total) {
  std::vector<const Arg*> items;
  if (arg.type == Arg::Type::kList) {
    for (const Arg& a : arg.children) items.push_back(&a);
  } else {
    items.push_back(&arg);
  }
  if (items.empty()) return Syntax("empty mailbox list");
  for (const Arg* a : items) {
    if (!a->is_astring() && a->type != Arg::Type::kNil) {
      return Syntax("mailbox");
    }
    if (++*total > NotifySpec::kMaxNames) return Unparkable("many mailboxes");
    names->push_back(Canonical(a->value));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<NotifySpec> NotifySpec::Parse(absl::string_view args) {
  const imap::ParserLimits limits;
  imap::CommandAssembler assembler(limits, limits.max_line_bytes);
  if (!assembler.AddLine(absl::StrCat("n NOTIFY ", args), nullptr).ok()) {
    return Syntax("unreadable");
  }
  absl::StatusOr<imap::Command> command = assembler.Finish();
  if (!command.ok() || command->args.empty()) return Syntax("unreadable");
  const std::vector<Arg>& a = command->args;
  NotifySpec spec;
  if (a[0].type == Arg::Type::kAtom &&
      absl::EqualsIgnoreCase(a[0].value, "NONE")) {
    if (a.size() != 1) return Syntax("NONE takes nothing");
    spec.none_ = true;
    return spec;
  }
  if (a[0].type != Arg::Type::kAtom ||
      !absl::EqualsIgnoreCase(a[0].value, "SET"))
    return Syntax("SET or NONE");
  size_t first = 1;
  if (a.size() > 1 && a[1].type == Arg::Type::kAtom &&
      absl::EqualsIgnoreCase(a[1].value, "STATUS")) {
    first = 2;
  }
  if (first >= a.size()) return Syntax("no event group");
  // The groups as sent, for SetCommand(): what follows "SET [STATUS] ".
  {
    absl::string_view rest = args;
    size_t pos = 0;
    for (size_t i = 0; i < first; ++i) {
      while (pos < rest.size() && rest[pos] == ' ') ++pos;
      pos = rest.find(' ', pos);
      if (pos == absl::string_view::npos) return Syntax("no event group");
    }
    while (pos < rest.size() && rest[pos] == ' ') ++pos;
    spec.groups_ = std::string(rest.substr(pos));
  }
  size_t names = 0;
  for (size_t i = first; i < a.size(); ++i) {
    const Arg& group = a[i];
    if (group.type != Arg::Type::kList || group.children.size() < 2 ||
        group.children[0].type != Arg::Type::kAtom) {
      return Syntax("event group");
    }
    const std::vector<Arg>& g = group.children;
    const std::string kind = absl::AsciiStrToLower(g[0].value);
    if (kind == "selected" || kind == "selected-delayed") {
      if (g.size() != 2) return Syntax(kind);
      absl::StatusOr<NotifyEvents> events = ParseEvents(g[1], true);
      if (!events.ok()) return events.status();
      spec.selected_ |= *events;
      continue;
    }
    Filter filter;
    size_t events_at = 1;
    if (kind == "personal" || kind == "inboxes") {
      // Dovecot 2.3 treats every personal mailbox as one mail may be
      // delivered to (observed), so "inboxes" covers what "personal" does.
      filter.scope = Scope::kPersonal;
    } else if (kind == "subtree" || kind == "mailboxes") {
      filter.scope = kind == "subtree" ? Scope::kSubtree : Scope::kMailboxes;
      if (g.size() != 3) return Syntax(kind);
      absl::Status s = ParseNames(g[1], &filter.names, &names);
      if (!s.ok()) return s;
      events_at = 2;
    } else if (kind == "subscribed") {
      return Unparkable("the subscribed mailboxes");
    } else {
      return Syntax("mailbox filter");
    }
    if (g.size() != events_at + 1) return Syntax(kind);
    absl::StatusOr<NotifyEvents> events = ParseEvents(g[events_at], false);
    if (!events.ok()) return events.status();
    filter.events = *events;
    spec.filters_.push_back(std::move(filter));
  }
  return spec;
}

NotifyEvents NotifySpec::EventsFor(absl::string_view folder,
                                   char delimiter) const {
  NotifyEvents out;
  const bool inbox = absl::EqualsIgnoreCase(folder, "INBOX");
  auto same = [&](const std::string& name) {
    return inbox ? name == "INBOX" : name == folder;
  };
  auto under = [&](const std::string& name) {
    if (folder.size() <= name.size() || !absl::StartsWith(folder, name)) {
      return false;
    }
    const char d = folder[name.size()];
    return delimiter != 0 ? d == delimiter : (d == '/' || d == '.');
  };
  for (const Filter& f : filters_) {
    bool covers = false;
    switch (f.scope) {
      case Scope::kPersonal:
        covers = true;
        break;
      case Scope::kSubtree:
        for (const std::string& n : f.names) covers |= same(n) || under(n);
        break;
      case Scope::kMailboxes:
        for (const std::string& n : f.names) covers |= same(n);
        break;
    }
    if (covers) out |= f.events;
  }
  return out;
}

bool NotifySpec::wants_mailbox_names() const {
  for (const Filter& f : filters_) {
    if (f.events.mailbox_name) return true;
  }
  return false;
}

bool NotifySpec::EveryName(
    absl::FunctionRef<bool(absl::string_view)> pred) const {
  for (const Filter& f : filters_) {
    for (const std::string& name : f.names) {
      if (!pred(name)) return false;
    }
  }
  return true;
}

std::string NotifySpec::SetCommand(bool with_status) const {
  if (none_) return {};
  return absl::StrCat("NOTIFY SET ", with_status ? "STATUS " : "", groups_);
}

}  // namespace pimap::session
