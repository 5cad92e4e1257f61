import Foundation

/// Reads a job's stdout or stderr line by line, as it is written, on a thread of its own.
///
/// Reads are 64 KiB at a time and lines are handed over as byte slices of the read
/// buffer, so a job printing a million lines is not held back by the reader. A line longer
/// than `maxLineBytes` is cut: its head is handed over with its full length.
public enum OutputLines {
    public struct Line {
        /// The line without its newline, or the first `maxLineBytes` of an overlong one.
        public var bytes: UnsafeRawBufferPointer
        /// The line's full length in bytes.
        public var length: Int
    }

    /// Over this, a line is cut (a `::result` may be up to 1 MiB, plus its marker).
    public static let maxLineBytes = (1 << 20) + 64

    /// Starts reading `descriptor` (which it closes at end of file) on a new thread.
    /// `onLine` runs for each line, `onChunk` after each read's lines, `onEnd` once.
    public static func start(
        descriptor: Int32, name: String, onLine: @escaping @Sendable (Line) -> Void,
        onChunk: @escaping @Sendable () -> Void, onEnd: @escaping @Sendable () -> Void
    ) {
        let thread = Thread {
            read(descriptor, onLine: onLine, onChunk: onChunk)
            close(descriptor)
            onEnd()
        }
        thread.name = name
        thread.start()
    }

    private static func read(
        _ descriptor: Int32, onLine: (Line) -> Void, onChunk: () -> Void
    ) {
        let bufferSize = 64 << 10
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        // The unfinished end of the previous read, and the full length of a line being cut.
        var carry: [UInt8] = []
        var carriedLength = 0
        while true {
            let count = Glibc.read(descriptor, buffer.baseAddress, bufferSize)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            var start = 0
            while start < count {
                let rest = UnsafeRawBufferPointer(rebasing: buffer[start..<count])
                guard let newline = rest.firstIndex(of: UInt8(ascii: "\n")) else {
                    let room = max(0, maxLineBytes - carry.count)
                    carry.append(contentsOf: rest.prefix(room))
                    carriedLength += rest.count
                    break
                }
                let segment = UnsafeRawBufferPointer(rebasing: rest[..<newline])
                if carriedLength == 0 {
                    onLine(Line(bytes: trimmed(segment), length: segment.count))
                } else {
                    let room = max(0, maxLineBytes - carry.count)
                    carry.append(contentsOf: segment.prefix(room))
                    let length = carriedLength + segment.count
                    carry.withUnsafeBytes { onLine(Line(bytes: trimmed($0), length: length)) }
                    carry.removeAll(keepingCapacity: true)
                    carriedLength = 0
                }
                start += newline + 1
            }
            onChunk()
        }
        if carriedLength > 0 {
            carry.withUnsafeBytes { onLine(Line(bytes: trimmed($0), length: carriedLength)) }
            onChunk()
        }
    }

    /// Without a trailing carriage return, and at most `maxLineBytes`.
    private static func trimmed(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var end = min(bytes.count, maxLineBytes)
        if end > 0 && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: bytes[..<end])
    }
}
