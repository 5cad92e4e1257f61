import Foundation
import HTTPTypes
import Hummingbird
import Logging
import SupervisorStore

/// The outermost middleware: turns every error into the API's JSON error shape, so no
/// request ever sees Hummingbird's plain-text errors, and tells 405 from 404.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = SupervisorRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as JobStoreError {
            return try Self.apiError(for: error).response(from: request, context: context)
        } catch let error as HTTPError {
            return try translate(error, request: request).response(from: request, context: context)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            return try APIError.storeUnavailable.response(from: request, context: context)
        }
    }

    static func apiError(for error: JobStoreError) -> APIError {
        switch error {
        case .queueFull:
            APIError(.tooManyRequests, code: "queue_full", message: error.description, headers: [.retryAfter: "5"])
        case .ownerOverLimit:
            APIError(.tooManyRequests, code: "owner_over_limit", message: error.description, headers: [.retryAfter: "5"])
        case .closed:
            APIError(.serviceUnavailable, code: "shutting_down", message: "the supervisor is shutting down")
        }
    }

    private func translate(_ error: HTTPError, request: Request) -> APIError {
        switch error.status {
        case .notFound:
            let path = request.uri.path
            let allowed = APIRoute.all.filter { $0.matches(path: path) }.map(\.method.rawValue)
            if !allowed.isEmpty {
                return APIError(
                    .methodNotAllowed, code: "method_not_allowed",
                    message: "\(request.method.rawValue) is not allowed on \(path)",
                    headers: [.allow: allowed.joined(separator: ", ")]
                )
            }
            return .notFound("no route \(path)")
        case .contentTooLarge:
            return APIError(.contentTooLarge, code: "payload_too_large", message: error.body ?? "the request body is too large")
        default:
            return APIError(error.status, code: error.status.reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "_"), message: error.body ?? error.status.reasonPhrase)
        }
    }
}
