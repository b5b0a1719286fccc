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

    /// <summary>
    /// The one mapping of a rejection to HTTP: 404 for an unknown escrow (plain, as for any id not found) or recipient,
    /// 422 idempotency misuse, 429 the caps, 400 a window not offered, 409 every other rule (the wrong state).
    /// </summary>
    public static ProblemHttpResult Rejection(Escrow.Rejection rejection, Guid? escrowId = null)
    {
        if (rejection == Escrow.Rejection.UnknownEscrow)
        {
            return NotFound(rejection.Message);
        }
        var status = rejection switch
        {
            _ when rejection == Escrow.Rejection.UnknownRecipient => StatusCodes.Status404NotFound,
            _ when rejection == Escrow.Rejection.IdempotencyKeyReused => StatusCodes.Status422UnprocessableEntity,
            _ when rejection == Escrow.Rejection.DailyLimitReached || rejection == Escrow.Rejection.TooManyUnpaid
                || rejection == Escrow.Rejection.TooManyDeclines => StatusCodes.Status429TooManyRequests,
            _ when rejection == Escrow.Rejection.UnsupportedWindow => StatusCodes.Status400BadRequest,
            _ => StatusCodes.Status409Conflict,
        };
        var code = rejection.Code;
        var extensions = new Dictionary<string, object?> { ["rejection"] = code };
        if (escrowId is not null)
        {
            extensions["escrowId"] = escrowId;
        }
        return Make(status, code, rejection.Message, type: $"https://escrow.invalid/problems/{code}", extensions: extensions);
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
