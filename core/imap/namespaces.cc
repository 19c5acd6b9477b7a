// NAMESPACE response parsing and the personal-folder test (namespaces.h).
#include "core/imap/namespaces.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace pimap::imap {

namespace {

// One class of namespaces: NIL, or a list of (prefix delimiter ext...).
absl::Status ReadClass(const Arg& arg, std::vector<Namespace>* out) {
  const size_t before = out->size();
  if (arg.type == Arg::Type::kNil) return absl::OkStatus();
  if (arg.type != Arg::Type::kList || arg.children.empty()) {
    return absl::InvalidArgumentError(
        "NAMESPACE: a class is not NIL or a list");
  }
  for (const Arg& ns : arg.children) {
    if (ns.type != Arg::Type::kList || ns.children.size() < 2 ||
        !ns.children[0].is_string()) {
      return absl::InvalidArgumentError("NAMESPACE: a bad namespace");
    }
    const Arg& delimiter = ns.children[1];
    if (delimiter.type != Arg::Type::kNil && !delimiter.is_string()) {
      return absl::InvalidArgumentError("NAMESPACE: a bad delimiter");
    }
    if (out->size() - before < Namespaces::kMaxPerClass) {
      out->push_back({ns.children[0].value, delimiter.type == Arg::Type::kNil
                                                ? ""
                                                : delimiter.value});
    }
  }
  return absl::OkStatus();
}

// How much of `mailbox` the namespace covers: the prefix's length when the
// mailbox is in it, -1 when it is not.
int Covers(const Namespace& ns, absl::string_view mailbox) {
  if (absl::StartsWith(mailbox, ns.prefix)) {
    return static_cast<int>(ns.prefix.size());
  }
  // The root itself ("Public" of "Public."): listed as a \Noselect parent.
  if (!ns.delimiter.empty() && absl::EndsWith(ns.prefix, ns.delimiter) &&
      mailbox == absl::string_view(ns.prefix).substr(
                     0, ns.prefix.size() - ns.delimiter.size())) {
    return static_cast<int>(ns.prefix.size());
  }
  return -1;
}

}  // namespace

absl::StatusOr<Namespaces> Namespaces::FromResponse(const Response& r) {
  if (r.kind != Response::Kind::kUntagged || r.name != "NAMESPACE" ||
      r.args.size() < 3) {
    return absl::InvalidArgumentError("not a NAMESPACE response");
  }
  Namespaces out;
  if (absl::Status s = ReadClass(r.args[0], &out.personal_); !s.ok()) return s;
  for (size_t i = 1; i < 3; ++i) {
    if (absl::Status s = ReadClass(r.args[i], &out.others_); !s.ok()) return s;
  }
  return out;
}

bool Namespaces::IsPersonal(absl::string_view mailbox) const {
  if (others_.empty() || absl::EqualsIgnoreCase(mailbox, "INBOX")) return true;
  int best_personal = -1, best_other = -1;
  for (const Namespace& ns : personal_) {
    best_personal = std::max(best_personal, Covers(ns, mailbox));
  }
  for (const Namespace& ns : others_) {
    best_other = std::max(best_other, Covers(ns, mailbox));
  }
  // Equal lengths (the same prefix listed twice): the user's own wins.
  return best_other < 0 || best_personal >= best_other;
}

}  // namespace pimap::imap
