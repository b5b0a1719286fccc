using Microsoft.Extensions.DependencyInjection;

namespace Escrow.Grains.Payments;

/// <summary>
/// The process's share of Stripe's rate limit (Stripe:MaxRequestsPerSecond divided by the cluster's active silos):
/// every request to Stripe waits until fewer than that many were sent in the last second. The window slides over the
/// times requests really passed, so waiters woken late (a busy thread pool) cannot bunch into one second. A burst of
/// deadlines then drains at the budget's pace instead of meeting 429s and retrying. Real seconds: Stripe's limit is
/// on wall time.
/// </summary>
public sealed class StripeRateBudget(IOptions<StripeOptions> options, IServiceProvider services)
{
    private static readonly TimeProvider WallClock = TimeProvider.System;
    private readonly Lock _gate = new();
    private readonly Queue<DateTimeOffset> _sent = new();

    /// <summary>Requests per second this process may send; 0 means no budget.</summary>
    public double PerSecond
    {
        get
        {
            var total = options.Value.EffectiveMaxRequestsPerSecond;
            return total <= 0 ? 0 : (double)total / Math.Max(1, ActiveSilos());
        }
    }

    /// <summary>Waits until this request may be sent.</summary>
    public async ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var perSecond = PerSecond;
            if (perSecond <= 0)
            {
                return;
            }
            // A fractional share (20 over 3 silos) allows floor(share) requests per floor(share)/share seconds.
            var capacity = Math.Max(1, (int)Math.Floor(perSecond));
            var window = TimeSpan.FromSeconds(capacity / perSecond);
            TimeSpan wait;
            lock (_gate)
            {
                var now = WallClock.GetUtcNow();
                while (_sent.Count > 0 && (_sent.Peek() <= now - window || _sent.Count > capacity))
                {
                    _sent.Dequeue();
                }
                if (_sent.Count < capacity)
                {
                    _sent.Enqueue(now);
                    return;
                }
                wait = _sent.Peek() + window - now;
            }
            await Task.Delay(wait, WallClock, cancellationToken);
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
