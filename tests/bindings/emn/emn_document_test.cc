// The OMA EMN encodings (bindings/emn/emn_document.h), byte for byte. The
// expected WBXML is derived by hand from WAP-192 (WBXML 1.3: header, global
// tokens STR_I 0x03, OPAQUE 0xC3, END 0x01, mb_u_int32) and the EMN 1.0 token
// tables (tag emn 0x05; attribute starts timestamp 0x05, mailbox="mailat:"
// 0x07; attribute values .com 0x85 .edu 0x86 .net 0x87 .org 0x88), not from
// the encoder.
#include "bindings/emn/emn_document.h"

#include <string>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace pimap::emn {
namespace {

absl::Time Utc(int y, int mo, int d, int h, int mi, int s) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s),
                         absl::UTCTimeZone());
}

std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

TEST(EmnDocumentTest, WbxmlOfTheSpecExample) {
  // <emn mailbox="mailat:joe@foo.com" timestamp="2002-04-16T06:40:00Z"/>
  const std::string expected = Bytes({
      0x03,  // WBXML version 1.3
      0x0D,  // public id: "-//WAPFORUM//DTD EMN 1.0//EN"
      0x6A,  // charset: UTF-8 (MIBenum 106)
      0x00,  // string table length 0
      0x85,  // emn, with attributes (0x80), no content
      0x07,  // mailbox="mailat:"
      0x03, 'j',  'o',  'e',  '@',  'f',  'o', 'o', 0x00,  // STR_I "joe@foo"
      0x85,                                                // ".com"
      0x05,                                                // timestamp=
      0xC3, 0x06,  // OPAQUE, 6 octets: 2002-04-16 06:40 (:00 left out)
      0x20, 0x02, 0x04, 0x16, 0x06, 0x40,
      0x01,  // END of the attribute list (no content, no second END)
  });
  EXPECT_EQ(EmnWbxml("joe@foo.com", Utc(2002, 4, 16, 6, 40, 0)), expected);
}

TEST(EmnDocumentTest, WbxmlDomainTokensAndPlainNames) {
  const absl::Time t = Utc(2026, 12, 7, 12, 5, 9);
  const std::string stamp =
      Bytes({0x05, 0xC3, 0x07, 0x20, 0x26, 0x12, 0x07, 0x12, 0x05, 0x09});
  // No domain: one inline string.
  EXPECT_EQ(EmnWbxml("alice", t), Bytes({0x03, 0x0D, 0x6A, 0x00, 0x85, 0x07,
                                         0x03, 'a', 'l', 'i', 'c', 'e', 0x00}) +
                                      stamp + Bytes({0x01}));
  // ".org" then ".net" inside: tokens between inline strings; a token at
  // the very start needs no empty string before it.
  EXPECT_EQ(EmnWbxml(".orgx.net", t), Bytes({0x03, 0x0D, 0x6A, 0x00, 0x85, 0x07,
                                             0x88, 0x03, 'x', 0x00, 0x87}) +
                                          stamp + Bytes({0x01}));
  // ".edu" mid-name too.
  EXPECT_EQ(EmnWbxml("a.edub", t),
            Bytes({0x03, 0x0D, 0x6A, 0x00, 0x85, 0x07, 0x03, 'a', 0x00, 0x86,
                   0x03, 'b', 0x00}) +
                stamp + Bytes({0x01}));
}

TEST(EmnDocumentTest, TimestampTrailingZeroOctetsLeftOut) {
  EXPECT_EQ(EmnTimestamp(Utc(2026, 12, 7, 12, 5, 9)),
            Bytes({0x20, 0x26, 0x12, 0x07, 0x12, 0x05, 0x09}));
  EXPECT_EQ(EmnTimestamp(Utc(2026, 1, 1, 0, 0, 0)),
            Bytes({0x20, 0x26, 0x01, 0x01}));
  // A zero inside stays.
  EXPECT_EQ(EmnTimestamp(Utc(2000, 10, 20, 0, 0, 1)),
            Bytes({0x20, 0x00, 0x10, 0x20, 0x00, 0x00, 0x01}));
}

// The element alone, as the UDP channel sends it in one datagram.
TEST(EmnDocumentTest, Element) {
  const absl::Time when = absl::FromUnixSeconds(1077259200);  // 2004-02-20
  EXPECT_EQ(EmnElement("joe@foo.com", when),
            "<emn mailbox=\"mailat:joe@foo.com\" "
            "timestamp=\"2004-02-20T06:40:00Z\"></emn>");
  EXPECT_EQ(EmnElement("a\"<&>\x01", when),
            "<emn mailbox=\"mailat:a&quot;&lt;&amp;&gt;\" "
            "timestamp=\"2004-02-20T06:40:00Z\"></emn>");
}

TEST(EmnDocumentTest, Text) {
  EXPECT_EQ(EmnXml("joe@foo.com", Utc(2002, 4, 16, 6, 40, 0)),
            "<?xml version=\"1.0\"?>\n"
            "<!DOCTYPE emn PUBLIC \"-//WAPFORUM//DTD EMN 1.0//EN\" "
            "\"http://www.wapforum.org/DTD/emn.dtd\">\n"
            "<emn mailbox=\"mailat:joe@foo.com\" "
            "timestamp=\"2002-04-16T06:40:00Z\"/>\n");
  // Escaped; control characters left out.
  const std::string text = EmnXml("a\"<&>\x01", Utc(2002, 4, 16, 6, 40, 0));
  EXPECT_NE(text.find("mailat:a&quot;&lt;&amp;&gt;\""), std::string::npos)
      << text;
}

}  // namespace
}  // namespace pimap::emn
