import Foundation
import SupervisorCore
import Testing

@Suite("JSON parsing")
struct JSONParserTests {
    @Test("valid documents", arguments: [
        // JSON does not tell 2.0 from 2: a number with an integral value is read as an integer.
        (#"{"a": [1, -2.5e3, -2.5e-1, null, true, false, "x"]}"#, JSONValue.object(["a": [1, -2500, -0.25, nil, true, false, "x"]])),
        (#"  "\"\\\/\b\f\n\r\t\u00e9\u20AC\ud83d\ude00"  "#, .string("\"\\/\u{08}\u{0C}\n\r\té€😀")),
        ("\"Grüße 😀\"", .string("Grüße 😀")),
        ("0", .int(0)), ("-0", .int(0)), ("-9223372036854775808", .int(.min)),
        ("-3024845570513139106", .int(-3_024_845_570_513_139_106)), ("9223372036854775807", .int(.max)),
        ("9223372036854775808", .double(9_223_372_036_854_775_808)), ("1E2", .int(100)), ("0.5", .double(0.5)),
        ("[]", .array([])), ("{}", .object([:])),
        ("\t[ 1 ,\n2 ]\r\n", .array([1, 2])),
    ])
    func valid(_ text: String, _ expected: JSONValue) throws {
        #expect(try JSONValue(parsing: Data(text.utf8)) == expected)
    }

    @Test("invalid documents are refused, as Foundation refuses them", arguments: [
        "", " ", "{", "}", "[1", "[1 2]", "{\"a\" 1}", "{\"a\":}", "{a:1}", "{'a':1}", "[01]", "[1.]", "[.5]", "[1e]",
        "[+1]", "[-]", "1e400", "-1e400", "nul", "truth", "[true false]", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"",
        "\"\\udc00\"", "\"tab\there\"", "\"open", "{\"a\":1}x", "[1]]", "\"\\", "[NaN]", "[Infinity]",
    ])
    func invalid(_ text: String) {
        #expect(throws: (any Error).self) { try JSONValue(parsing: Data(text.utf8)) }
        #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) == nil)
    }

    @Test("invalid UTF-8 inside a string is refused")
    func invalidUTF8() {
        #expect(throws: (any Error).self) { try JSONValue(parsing: Data([0x22, 0xC3, 0x28, 0x22])) }
        #expect(throws: (any Error).self) { try JSONValue(parsing: Data([0x22, 0xFF, 0x22])) }
    }

    @Test("deep nesting is refused without exhausting the stack")
    func deepNesting() throws {
        let deep = String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000)
        #expect(throws: (any Error).self) { try JSONValue(parsing: Data(deep.utf8)) }
        let fine = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        _ = try JSONValue(parsing: Data(fine.utf8))
    }

    @Test("random documents: our text parses back to the same value, and Foundation reads it the same")
    func randomRoundTrip() throws {
        var generator = SplitMix64(seed: 0x5EED)
        for _ in 0..<2000 {
            let value = JSONValue.random(using: &generator, depth: 0)
            let text = value.serialized()
            let parsed = try JSONValue(parsing: text)
            #expect(parsed == value, "\(String(decoding: text, as: UTF8.self))")
            let foundation = try JSONSerialization.jsonObject(with: text, options: [.fragmentsAllowed])
            #expect(JSONValue(foundation: foundation).sameNumbers(as: value), "\(String(decoding: text, as: UTF8.self))")
        }
    }
}

/// A small seeded generator, so a failing document can be reproduced.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension JSONValue {
    static func random(using generator: inout SplitMix64, depth: Int) -> JSONValue {
        let pick = Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &generator)
        switch pick {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2: return .int(Int64.random(in: Int64.min...Int64.max, using: &generator) >> Int64.random(in: 0...60, using: &generator))
        // Never integral: an integral double is written as an integer, and read back as one.
        case 3: return .double(Double(Int.random(in: -1_000_000...1_000_000, using: &generator)) / 64 + 1.0 / 128)
        case 4:
            let alphabet: [Character] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{01}", "é", "€", "😀", "\u{7F}"]
            return .string(String((0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }))
        case 5:
            return .array((0..<Int.random(in: 0...4, using: &generator)).map { _ in random(using: &generator, depth: depth + 1) })
        default:
            var members: [String: JSONValue] = [:]
            for index in 0..<Int.random(in: 0...4, using: &generator) {
                members["k\(index)\(["", "é", "\"", "😀"].randomElement(using: &generator)!)"] = random(using: &generator, depth: depth + 1)
            }
            return .object(members)
        }
    }

    /// Equal, except that Foundation reads some large integers as doubles of the same value.
    func sameNumbers(as other: JSONValue) -> Bool {
        switch (self, other) {
        case (.double(let double), .int(let integer)), (.int(let integer), .double(let double)):
            return double == Double(integer)
        case (.array(let lhs), .array(let rhs)):
            return lhs.count == rhs.count && zip(lhs, rhs).allSatisfy { $0.sameNumbers(as: $1) }
        case (.object(let lhs), .object(let rhs)):
            return lhs.keys == rhs.keys && lhs.allSatisfy { key, value in value.sameNumbers(as: rhs[key]!) }
        default:
            return self == other
        }
    }

    /// Foundation's reading of a document, for comparison.
    init(foundation object: Any) {
        switch object {
        case let text as String: self = .string(text)
        case let number as NSNumber:
            switch UInt8(bitPattern: number.objCType.pointee) {
            case UInt8(ascii: "c"): self = .bool(number.boolValue)
            case UInt8(ascii: "d"), UInt8(ascii: "f"): self = .double(number.doubleValue)
            default: self = .int(number.int64Value)
            }
        case let array as [Any]: self = .array(array.map(JSONValue.init(foundation:)))
        case let members as [String: Any]: self = .object(members.mapValues(JSONValue.init(foundation:)))
        default: self = .null
        }
    }
}
