using System.Threading.RateLimiting;
using Escrow.Silo;

namespace Escrow.Api.Hosting;

/// <summary>
/// Anonymous callers are rate limited per client address (section "RateLimits", address by <see cref="ClientAddresses"/>):
/// escrow creates, and escrow reads by access token. A caller with a valid API key is not limited by address.
/// </summary>
public static class RateLimits
{
    public const string Senders = "senders";
    public const string Readers = "readers";

    public static IServiceCollection AddEscrowRateLimits(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddEscrowOptions<ClientAddressOptions, ClientAddressOptionsValidator>(configuration, ClientAddressOptions.Section);
        services.AddSingleton<ClientAddresses>();
        var senderPermits = configuration.GetValue("RateLimits:SenderPermitsPerMinute", 60);
        var readerPermits = configuration.GetValue("RateLimits:ReaderPermitsPerMinute", 120);
        services.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.OnRejected = async (context, token) =>
            {
                context.HttpContext.Response.Headers.RetryAfter = "60";
                await Problems.Make(StatusCodes.Status429TooManyRequests, "Too many requests", "Too many requests from one address; retry in a minute.")
                    .ExecuteAsync(context.HttpContext);
            };
            o.AddPolicy(Senders, http => PerAddress(http, senderPermits));
            o.AddPolicy(Readers, http =>
                http.RequestServices.GetRequiredService<ApiKeyRegistry>().Identify(http.Request.Headers[ApiKeyRegistry.Header]) is not null
                    ? RateLimitPartition.GetNoLimiter("api-key")
                    : PerAddress(http, readerPermits));
        });
        return services;
    }

    private static RateLimitPartition<string> PerAddress(HttpContext http, int permits) => RateLimitPartition.GetFixedWindowLimiter(
        http.RequestServices.GetRequiredService<ClientAddresses>().PartitionOf(http),
        _ => new FixedWindowRateLimiterOptions { PermitLimit = permits, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 });
}
