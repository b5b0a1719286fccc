using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Escrow.Api;

/// <summary>RFC 9457 problem details for every refusal; a rejection carries the machine's rule name.</summary>
public static class Problems
{
    public static ProblemHttpResult BadRequest(string detail, IDictionary<string, object?>? extensions = null) =>
        Make(StatusCodes.Status400BadRequest, "Invalid request", detail, extensions: extensions);

    public static ProblemHttpResult Validation(IDictionary<string, string[]> errors) =>
        Make(StatusCodes.Status400BadRequest, "Invalid request", "One or more fields are invalid.", extensions: new Dictionary<string, object?> { ["errors"] = errors });

    public static ProblemHttpResult Unauthorized(string detail) => Make(StatusCodes.Status401Unauthorized, "Unauthorized", detail);

    public static ProblemHttpResult Forbidden(string detail) => Make(StatusCodes.Status403Forbidden, "Forbidden", detail);

    public static ProblemHttpResult NotFound(string detail) => Make(StatusCodes.Status404NotFound, "Not found", detail);

    public static ProblemHttpResult Unavailable(string detail) => Make(StatusCodes.Status503ServiceUnavailable, "Temporarily unavailable", detail);

    /// <summary>Maps a named rejection to its status: 404 unknown, 422 idempotency misuse, 429 daily limit, 409 wrong state.</summary>
    public static ProblemHttpResult Rejection(string code, string? message, Guid? escrowId = null)
    {
        var status = code switch
        {
            "unknown_recipient" or "unknown_escrow" => StatusCodes.Status404NotFound,
            "idempotency_key_reused" => StatusCodes.Status422UnprocessableEntity,
            "daily_limit_reached" or "too_many_unpaid" or "too_many_declines" => StatusCodes.Status429TooManyRequests,
            "unsupported_response_window" => StatusCodes.Status400BadRequest,
            _ => StatusCodes.Status409Conflict,
        };
        var extensions = new Dictionary<string, object?> { ["rejection"] = code };
        if (escrowId is not null)
        {
            extensions["escrowId"] = escrowId;
        }
        return Make(status, code, message ?? code, type: $"https://escrow.invalid/problems/{code}", extensions: extensions);
    }

    public static ProblemHttpResult Make(int status, string title, string detail, string? type = null, IDictionary<string, object?>? extensions = null)
    {
        var problem = new ProblemDetails { Status = status, Title = title, Detail = detail, Type = type };
        if (extensions is not null)
        {
            foreach (var (key, value) in extensions)
            {
                problem.Extensions[key] = value;
            }
        }
        return TypedResults.Problem(problem);
    }
}
