using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace Escrow.Api.Hosting;

/// <summary>
/// A cluster or database failure in the middle of a request (a silo that just died, a call that timed out, a lost
/// connection) is temporary, and every write path is idempotent: the client is told 503 with Retry-After and retries
/// the same request, instead of a 500 that reads as a bug. What was already made durable stays; a retry finds it.
/// </summary>
public sealed partial class TransientFailureHandler(IProblemDetailsService problems, ILogger<TransientFailureHandler> logger) : IExceptionHandler
{
    public const int RetryAfterSeconds = 2;

    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        if (!Escrow.Grains.TransientFailure.Is(exception) || context.Response.HasStarted)
        {
            return false;
        }
        LogTransient(exception, context.Request.Method, context.Request.Path);
        context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        context.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            Exception = exception,
            ProblemDetails = new ProblemDetails
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Title = "Temporarily unavailable",
                Detail = "The service could not finish this request because a part of it is briefly unavailable. Retry the same request (with the same Idempotency-Key for a create); what was already recorded is kept.",
            },
        });
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Method} {Path}: a temporary failure answered 503")]
    private partial void LogTransient(Exception e, string method, string path);
}
