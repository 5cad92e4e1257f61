import Foundation
import Synchronization

/// A job's identifier: a UUIDv7 in its canonical lowercase text form.
///
/// UUIDv7 gives ids that are unguessable (74 random bits), URL-safe, and sort by
/// creation time, so the store can page "newest first" by id alone.
public struct JobID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: String

    /// Accepts only the canonical form, so a path segment that is not an id is a 404
    /// without touching the store.
    public init?(_ text: some StringProtocol) {
        guard text.utf8.count == 36 else { return nil }
        for (index, byte) in text.utf8.enumerated() {
            switch index {
            case 8, 13, 18, 23:
                guard byte == UInt8(ascii: "-") else { return nil }
            default:
                guard (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
                else { return nil }
            }
        }
        self.rawValue = String(text)
    }

    public var description: String { rawValue }

    public static func < (lhs: JobID, rhs: JobID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Makes job ids; injected so tests can make them deterministic.
public protocol JobIDGenerator: Sendable {
    func next(at date: Date) -> JobID
}

/// RFC 9562 UUIDv7 with a 12-bit counter in `rand_a`, so ids made in the same
/// millisecond by this process still sort in the order they were made.
public final class UUIDv7Generator: JobIDGenerator {
    private struct State {
        var lastMillis: UInt64 = 0
        var counter: UInt16 = 0
    }

    private let state = Mutex(State())

    public init() {}

    public func next(at date: Date) -> JobID {
        let wallMillis = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        let (millis, counter): (UInt64, UInt16) = state.withLock { state in
            if wallMillis > state.lastMillis {
                state.lastMillis = wallMillis
                state.counter = UInt16.random(in: 0..<0x400)
            } else if state.counter < 0xFFF {
                state.counter += 1
            } else {
                // Counter exhausted within one millisecond: borrow the next one.
                state.lastMillis += 1
                state.counter = 0
            }
            return (state.lastMillis, state.counter)
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<6 {
            bytes[index] = UInt8(truncatingIfNeeded: millis >> (8 * (5 - UInt64(index))))
        }
        bytes[6] = 0x70 | UInt8(counter >> 8)
        bytes[7] = UInt8(truncatingIfNeeded: counter)
        var random = SystemRandomNumberGenerator()
        let tail = random.next() as UInt64
        for index in 8..<16 {
            bytes[index] = UInt8(truncatingIfNeeded: tail >> (8 * (15 - UInt64(index))))
        }
        bytes[8] = 0x80 | (bytes[8] & 0x3F)
        return JobID(Self.format(bytes))!
    }

    private static func format(_ bytes: [UInt8]) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
