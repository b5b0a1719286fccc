using System.Threading.RateLimiting;

namespace Escrow.Api.Hosting;

/// <summary>
/// Anonymous callers are rate limited per client address (section "RateLimits", address by <see cref="ClientAddresses"/>):
/// escrow creates, and escrow reads by access token. A caller with a valid API key is not limited by address.
/// The limiter is a singleton of the host, disposed with it: ASP.NET Core's rate-limiting middleware never disposes
/// its limiters, and their heartbeat timers kept every stopped host of a process alive.
/// </summary>
public sealed class RateLimits : IAsyncDisposable
{
    public const string Senders = "senders";
    public const string Readers = "readers";

    private readonly PartitionedRateLimiter<HttpContext> _limiter;

    public RateLimits(IConfiguration configuration, ClientAddresses addresses, ApiKeyRegistry keys)
    {
        var senderPermits = configuration.GetValue("RateLimits:SenderPermitsPerMinute", 60);
        var readerPermits = configuration.GetValue("RateLimits:ReaderPermitsPerMinute", 120);
        RateLimitPartition<string> PerAddress(HttpContext http, string policy, int permits) => RateLimitPartition.GetFixedWindowLimiter(
            policy + "|" + addresses.PartitionOf(http),
            _ => new FixedWindowRateLimiterOptions { PermitLimit = permits, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 });
        _limiter = PartitionedRateLimiter.Create<HttpContext, string>(http => http.GetEndpoint()?.Metadata.GetMetadata<Limited>()?.Policy switch
        {
            Senders => PerAddress(http, Senders, senderPermits),
            Readers when keys.Identify(http.Request.Headers[ApiKeyRegistry.Header]) is null
                => PerAddress(http, Readers, readerPermits),
            _ => RateLimitPartition.GetNoLimiter("unlimited"),
        });
    }

    /// <summary>Endpoint metadata naming the limit an endpoint is under.</summary>
    public sealed record Limited(string Policy);

    /// <summary>Answers 429 with a problem and Retry-After when the caller's permits for this minute are used up.</summary>
    public async Task InvokeAsync(HttpContext http, RequestDelegate next)
    {
        if (!Admits(http))
        {
            http.Response.Headers.RetryAfter = "60";
            await Problems.Make(StatusCodes.Status429TooManyRequests, "Too many requests", "Too many requests from one address; retry in a minute.")
                .ExecuteAsync(http);
            return;
        }
        await next(http);
    }

    /// <summary>Takes a permit of the request's limit, if it is under one; false when they are used up.</summary>
    public bool Admits(HttpContext http)
    {
        using var lease = _limiter.AttemptAcquire(http);
        return lease.IsAcquired;
    }

    public ValueTask DisposeAsync() => _limiter.DisposeAsync();
}

public static class RateLimitHosting
{
    public static IServiceCollection AddEscrowRateLimits(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddEscrowOptions<ClientAddressOptions, ClientAddressOptionsValidator>(configuration, ClientAddressOptions.Section);
        services.AddSingleton<ClientAddresses>();
        services.AddSingleton<RateLimits>();
        return services;
    }

    public static IApplicationBuilder UseEscrowRateLimits(this IApplicationBuilder app)
    {
        var limits = app.ApplicationServices.GetRequiredService<RateLimits>();
        return app.Use(limits.InvokeAsync);
    }

    /// <summary>Puts the endpoint under the named limit of <see cref="RateLimits"/>.</summary>
    public static TBuilder RateLimited<TBuilder>(this TBuilder builder, string policy) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new RateLimits.Limited(policy));
}
