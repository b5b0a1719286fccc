using System.Threading.RateLimiting;

namespace Escrow.Api.Hosting;

/// <summary>Anonymous senders are rate limited per client address (section "RateLimits").</summary>
public static class RateLimits
{
    public const string Senders = "senders";

    public static IServiceCollection AddEscrowRateLimits(this IServiceCollection services, IConfiguration configuration)
    {
        var permits = configuration.GetValue("RateLimits:SenderPermitsPerMinute", 60);
        services.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.OnRejected = async (context, token) =>
            {
                context.HttpContext.Response.Headers.RetryAfter = "60";
                await Problems.Make(StatusCodes.Status429TooManyRequests, "Too many requests", $"At most {permits} new escrows per minute from one address.")
                    .ExecuteAsync(context.HttpContext);
            };
            o.AddPolicy(Senders, http => RateLimitPartition.GetFixedWindowLimiter(
                http.Connection.RemoteIpAddress?.ToString() ?? "unknown",
                _ => new FixedWindowRateLimiterOptions { PermitLimit = permits, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }));
        });
        return services;
    }
}
