using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Escrow.Grains.Payments;

/// <summary>
/// The process's share of Stripe's rate limit (Stripe:MaxRequestsPerSecond divided by the cluster's active silos):
/// every request to Stripe takes the next free slot, spaced evenly, and waits for it. A burst of deadlines then
/// drains at the budget's pace instead of meeting 429s and retrying. Real seconds: Stripe's limit is on wall time.
/// </summary>
public sealed class StripeRateBudget(IOptions<StripeOptions> options, IServiceProvider services)
{
    private static readonly TimeProvider WallClock = TimeProvider.System;
    private readonly Lock _gate = new();
    private DateTimeOffset _nextSlot = DateTimeOffset.MinValue;

    /// <summary>Requests per second this process may send; 0 means no budget.</summary>
    public double PerSecond
    {
        get
        {
            var total = options.Value.EffectiveMaxRequestsPerSecond;
            return total <= 0 ? 0 : (double)total / Math.Max(1, ActiveSilos());
        }
    }

    /// <summary>Waits for this request's slot.</summary>
    public async ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        var perSecond = PerSecond;
        if (perSecond <= 0)
        {
            return;
        }
        var spacing = TimeSpan.FromSeconds(1 / perSecond);
        var now = WallClock.GetUtcNow();
        DateTimeOffset slot;
        lock (_gate)
        {
            slot = _nextSlot > now ? _nextSlot : now;
            _nextSlot = slot + spacing;
        }
        if (slot > now)
        {
            await Task.Delay(slot - now, WallClock, cancellationToken);
        }
    }

    private int ActiveSilos() =>
        services.GetService<IClusterMembershipService>()?.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active) ?? 1;
}

/// <summary>Makes every request of the Stripe HttpClient (Stripe.net's own retries included) wait for the budget.</summary>
public sealed class StripeRateBudgetHandler(StripeRateBudget budget) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        await budget.WaitAsync(cancellationToken);
        return await base.SendAsync(request, cancellationToken);
    }
}
