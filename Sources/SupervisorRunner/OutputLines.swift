import CSupervisorLinux
import Foundation
import Synchronization

/// Reads the jobs' stdout and stderr line by line, as they are written: every stream of
/// every attempt on one thread, which waits on all of them with `epoll`.
///
/// One thread rather than one per stream: two threads made and ended per attempt were a
/// larger cost than reading for jobs that print little. Reads are 64 KiB at a time and
/// lines are handed over as byte slices of the read buffer, so a job printing a million
/// lines is not held back by the reader. A line longer than `maxLineBytes` is cut: its
/// head is handed over with its full length.
public enum OutputLines {
    public struct Line {
        /// The line without its newline, or the first `maxLineBytes` of an overlong one.
        public var bytes: UnsafeRawBufferPointer
        /// The line's full length in bytes.
        public var length: Int
    }

    /// Over this, a line is cut (a `::result` may be up to 1 MiB, plus its marker).
    public static let maxLineBytes = (1 << 20) + 64

    /// Starts reading `descriptor`, which it closes at end of file. On the reader thread,
    /// `onLine` runs for each line, `onChunk` after each read's lines, `onEnd` once: the
    /// callbacks of one stream never run at the same time, and should not block.
    public static func start(
        descriptor: Int32, onLine: @escaping @Sendable (Line) -> Void, onChunk: @escaping @Sendable () -> Void,
        onEnd: @escaping @Sendable () -> Void
    ) {
        reader.add(Stream(descriptor: descriptor, onLine: onLine, onChunk: onChunk, onEnd: onEnd))
    }

    private static let reader = Reader()

    /// The thread and its `epoll` set.
    private final class Reader: Sendable {
        private let epoll: Int32
        /// By descriptor; the reader thread alone uses a stream once it is here.
        private let streams = Mutex<[Int32: Stream]>([:])

        init() {
            epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
            precondition(epoll >= 0, "epoll_create1: \(String(cString: strerror(errno)))")
            let thread = Thread { [self] in run() }
            thread.name = "supervisor-output"
            thread.start()
        }

        func add(_ stream: Stream) {
            streams.withLock { $0[stream.descriptor] = stream }
            var event = epoll_event()
            event.events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
            event.data.fd = stream.descriptor
            if epoll_ctl(epoll, EPOLL_CTL_ADD, stream.descriptor, &event) != 0 {
                // Not a descriptor epoll can wait on: nothing will ever be read from it.
                streams.withLock { _ = $0.removeValue(forKey: stream.descriptor) }
                close(stream.descriptor)
                stream.onEnd()
            }
        }

        private func run() {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
            let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: 64)
            while true {
                let ready = epoll_wait(epoll, events, 64, -1)
                guard ready > 0 else { continue }
                for index in 0..<Int(ready) {
                    let descriptor = events[index].data.fd
                    guard let stream = streams.withLock({ $0[descriptor] }) else { continue }
                    // One read per wakeup: a stream that always has more waits its turn.
                    let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
                    if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                    if count > 0 {
                        stream.consume(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                        continue
                    }
                    epoll_ctl(epoll, EPOLL_CTL_DEL, descriptor, nil)
                    streams.withLock { _ = $0.removeValue(forKey: descriptor) }
                    close(descriptor)
                    stream.finish()
                }
            }
        }
    }

    /// One stream's callbacks, and the unfinished line carried from one read to the next.
    private final class Stream: @unchecked Sendable {
        let descriptor: Int32
        let onLine: @Sendable (Line) -> Void
        let onChunk: @Sendable () -> Void
        let onEnd: @Sendable () -> Void
        private var carry: [UInt8] = []
        /// The full length of the line being carried (or cut).
        private var carriedLength = 0

        init(
            descriptor: Int32, onLine: @escaping @Sendable (Line) -> Void, onChunk: @escaping @Sendable () -> Void,
            onEnd: @escaping @Sendable () -> Void
        ) {
            self.descriptor = descriptor
            self.onLine = onLine
            self.onChunk = onChunk
            self.onEnd = onEnd
        }

        func consume(_ bytes: UnsafeRawBufferPointer) {
            var start = 0
            while start < bytes.count {
                let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
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
                    carry.removeAll(keepingCapacity: carry.capacity <= 64 << 10)
                    carriedLength = 0
                }
                start += newline + 1
            }
            onChunk()
        }

        /// At end of file: the last line, if it had no newline, then the end.
        func finish() {
            if carriedLength > 0 {
                carry.withUnsafeBytes { onLine(Line(bytes: trimmed($0), length: carriedLength)) }
                onChunk()
            }
            onEnd()
        }

        /// Without a trailing carriage return, and at most `maxLineBytes`.
        private func trimmed(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
            var end = min(bytes.count, maxLineBytes)
            if end > 0 && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            return UnsafeRawBufferPointer(rebasing: bytes[..<end])
        }
    }
}
