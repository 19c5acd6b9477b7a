// The gateway's mirror of the store's user-name rule (user_name_format.h).
#include "core/imap/user_name_format.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace pimap::imap {

namespace {

constexpr int kMaxVariables = 16;

absl::Status BadSpec(absl::string_view spec, size_t pos,
                     absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "user name format \"", spec, "\" at position ", pos + 1, ": ", why));
}

}  // namespace

UserNameFormat::UserNameFormat() : spec_("%Lu") {
  pieces_.push_back(Piece{Var::kUser, Case::kLower, {}});
}

bool UserNameFormat::identity() const {
  return pieces_.size() == 1 && pieces_[0].var == Var::kUser &&
         pieces_[0].letter_case == Case::kKeep;
}

absl::StatusOr<UserNameFormat> UserNameFormat::Parse(absl::string_view spec) {
  UserNameFormat format;
  format.spec_ = std::string(spec);
  format.pieces_.clear();
  int variables = 0;
  bool names_the_user = false;
  size_t i = 0;
  while (i < spec.size()) {
    const char c = spec[i];
    if (c != '%') {
      if (format.pieces_.empty() ||
          format.pieces_.back().var != Var::kLiteral) {
        format.pieces_.push_back(Piece{});
      }
      format.pieces_.back().literal.push_back(c);
      ++i;
      continue;
    }
    const size_t start = i++;
    if (i < spec.size() && spec[i] == '%') {
      if (format.pieces_.empty() ||
          format.pieces_.back().var != Var::kLiteral) {
        format.pieces_.push_back(Piece{});
      }
      format.pieces_.back().literal.push_back('%');
      ++i;
      continue;
    }
    Piece piece;
    if (i < spec.size() && (spec[i] == 'L' || spec[i] == 'U')) {
      piece.letter_case = spec[i] == 'L' ? Case::kLower : Case::kUpper;
      ++i;
    }
    if (i >= spec.size()) return BadSpec(spec, start, "'%' ends the format");
    absl::string_view name;
    if (spec[i] == '{') {
      const size_t close = spec.find('}', i);
      if (close == absl::string_view::npos) {
        return BadSpec(spec, start, "'%{' without '}'");
      }
      name = spec.substr(i + 1, close - i - 1);
      i = close + 1;
    } else {
      name = spec.substr(i, 1);
      ++i;
    }
    if (name == "u" || name == "user") {
      piece.var = Var::kUser;
    } else if (name == "n" || name == "username") {
      piece.var = Var::kUserName;
    } else if (name == "d" || name == "domain") {
      piece.var = Var::kDomain;
    } else {
      return BadSpec(spec, start,
                     absl::StrCat("unknown variable \"", name,
                                  "\" (expected u, n, d, user, username or "
                                  "domain, with an optional L or U)"));
    }
    if (++variables > kMaxVariables) {
      return BadSpec(spec, start, "more than 16 variables");
    }
    names_the_user |= piece.var != Var::kDomain;
    format.pieces_.push_back(std::move(piece));
  }
  if (!names_the_user) {
    return absl::InvalidArgumentError(
        absl::StrCat("user name format \"", spec,
                     "\" names no user (%u or %n): every login would be one "
                     "user"));
  }
  return format;
}

absl::StatusOr<std::string> UserNameFormat::Apply(
    absl::string_view user) const {
  const size_t at = user.find('@');
  const absl::string_view user_name =
      at == absl::string_view::npos ? user : user.substr(0, at);
  const absl::string_view domain =
      at == absl::string_view::npos ? absl::string_view() : user.substr(at + 1);
  std::string out;
  bool named = false;  // a %u or %n contributed a character
  for (const Piece& piece : pieces_) {
    if (piece.var == Var::kLiteral) {
      out += piece.literal;
      continue;
    }
    const absl::string_view value = piece.var == Var::kUser       ? user
                                    : piece.var == Var::kUserName ? user_name
                                                                  : domain;
    named |= piece.var != Var::kDomain && !value.empty();
    const size_t from = out.size();
    out.append(value.data(), value.size());
    char* begin = out.data() + from;
    char* end = out.data() + out.size();
    if (piece.letter_case == Case::kLower) {
      for (char* p = begin; p != end; ++p) *p = absl::ascii_tolower(*p);
    } else if (piece.letter_case == Case::kUpper) {
      for (char* p = begin; p != end; ++p) *p = absl::ascii_toupper(*p);
    }
  }
  // What the rule makes of the name must still name a user, not only the
  // format's own text (e.g. "%n@example.org" of "@x").
  if (!named) {
    return absl::InvalidArgumentError(
        "the user name is empty under the store's rule");
  }
  return out;
}

}  // namespace pimap::imap
