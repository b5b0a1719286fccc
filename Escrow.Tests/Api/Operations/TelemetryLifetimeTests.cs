using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;

namespace Escrow.Tests.Api.Operations;

/// <summary>What a host registers with the process's metrics goes away with the host.</summary>
public sealed class TelemetryLifetimeTests
{
    private static List<Instrument> OpenEscrowGauges()
    {
        var found = new List<Instrument>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Name == "escrow.open")
                {
                    found.Add(instrument);
                }
            },
        };
        listener.Start();
        return found;
    }

    /// <summary>A gauge on the process-wide meter kept every stopped host's callback, and a metric stream per reader, alive.</summary>
    [Fact]
    public async Task The_open_escrows_gauge_lives_on_its_hosts_meters_and_goes_with_the_host()
    {
        IMeterFactory meters;
        await using (var app = new EscrowApiFactory())
        {
            _ = app.Server;
            meters = app.Services.GetRequiredService<IMeterFactory>();
            await Eventually.UntilAsync(() => Task.FromResult(OpenEscrowGauges().Any(g => g.Meter.Scope == meters)), "the host's escrow.open gauge");
        }

        var left = OpenEscrowGauges();
        Assert.DoesNotContain(left, g => g.Meter.Scope == meters);
        Assert.All(left, g => Assert.NotNull(g.Meter.Scope));
    }
}

/// <summary>The rate limiter is the host's: its timers stop with the host instead of keeping it alive.</summary>
public sealed class RateLimiterLifetimeTests
{
    [Fact]
    public async Task The_rate_limiter_is_disposed_with_its_host()
    {
        Escrow.Api.Hosting.RateLimits limits;
        await using (var app = new EscrowApiFactory())
        {
            _ = app.Server;
            limits = app.Services.GetRequiredService<Escrow.Api.Hosting.RateLimits>();
            Assert.True(limits.Admits(new Microsoft.AspNetCore.Http.DefaultHttpContext()));
        }

        Assert.Throws<ObjectDisposedException>(() => limits.Admits(new Microsoft.AspNetCore.Http.DefaultHttpContext()));
    }
}
