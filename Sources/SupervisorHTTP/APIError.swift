import NIOCore
import Foundation
public import HTTPTypes
public import Hummingbird
import SupervisorCore

/// Every error the API answers: `{"error": {"code", "message"}}` with its status (SPEC section 4).
public struct APIError: HTTPResponseError, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = JSONResponse.make(status: status, ["error": ["code": .string(code), "message": .string(message)]])
        response.headers.append(contentsOf: headers)
        return response
    }
}

extension APIError {
    static func notFound(_ message: String) -> APIError { APIError(.notFound, code: "not_found", message: message) }

    static func jobNotFound(_ id: String) -> APIError { .notFound("no job \(id)") }

    static func invalidField(_ field: String, _ message: String) -> APIError {
        APIError(.unprocessableContent, code: "invalid_field", message: "\(field): \(message)")
    }

    static func invalidState(_ message: String) -> APIError { APIError(.conflict, code: "invalid_state", message: message) }

    static func notSupportedYet(_ what: String) -> APIError {
        APIError(.unprocessableContent, code: "not_supported", message: "\(what) is not supported yet by this version of supervisor")
    }

    static let unauthorized = APIError(
        .unauthorized, code: "unauthorized", message: "a valid bearer token is required",
        headers: [.wwwAuthenticate: "Bearer"]
    )

    static let storeUnavailable = APIError(.serviceUnavailable, code: "store_unavailable", message: "the job store is unavailable")
}

/// JSON answers.
enum JSONResponse {
    static func make(status: HTTPResponse.Status = .ok, _ document: JSONValue, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: document.serialized())))
    }
}
