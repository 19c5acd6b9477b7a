// Tests for core/session/store_text: rendering parsed arguments for the store
// and for devices, and the CONDSTORE echo a device without CONDSTORE must not
// see.
#include "core/session/store_text.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pimap::session {
namespace {

imap::Arg Quoted(std::string value) {
  imap::Arg a;
  a.type = imap::Arg::Type::kQuoted;
  a.value = std::move(value);
  return a;
}

imap::Arg Atom(std::string value) {
  imap::Arg a;
  a.type = imap::Arg::Type::kAtom;
  a.value = std::move(value);
  return a;
}

TEST(StoreTextTest, StripModseqSaysWhenOnlyTheUidIsLeft) {
  std::string line = "* 3 FETCH (UID 7 MODSEQ (12))";
  EXPECT_TRUE(StripModseq(&line));
  EXPECT_EQ(line, "* 3 FETCH (UID 7)");
  line = "* 3 FETCH (MODSEQ (12) UID 7)";
  EXPECT_TRUE(StripModseq(&line));
  EXPECT_EQ(line, "* 3 FETCH (UID 7)");
  line = "* 3 FETCH (UID 7 FLAGS (\\Seen) MODSEQ (12))";
  EXPECT_FALSE(StripModseq(&line));
  EXPECT_EQ(line, "* 3 FETCH (UID 7 FLAGS (\\Seen))");
  // No MODSEQ: what the device asked for, never dropped.
  line = "* 3 FETCH (UID 7)";
  EXPECT_FALSE(StripModseq(&line));
  EXPECT_EQ(line, "* 3 FETCH (UID 7)");
}

TEST(StoreTextTest, LiteralsAreNonSynchronisingToTheStoreAndPlainToDevices) {
  const std::string long_name(1500, 'x');
  std::vector<imap::Arg> args;
  imap::Arg attrs;
  attrs.type = imap::Arg::Type::kList;
  attrs.children.push_back(Atom("\\HasNoChildren"));
  args.push_back(attrs);
  args.push_back(Quoted("/"));
  args.push_back(Quoted(long_name));
  EXPECT_EQ(RenderArgs(args, 0),
            "(\\HasNoChildren) \"/\" {1500+}\r\n" + long_name);
  EXPECT_EQ(RenderArgs(args, 0, /*to_device=*/true),
            "(\\HasNoChildren) \"/\" {1500}\r\n" + long_name);
  args[2] = Quoted("a \"b\" \\c");
  EXPECT_EQ(RenderArgs(args, 1, /*to_device=*/true),
            "\"/\" \"a \\\"b\\\" \\\\c\"");
}

}  // namespace
}  // namespace pimap::session
