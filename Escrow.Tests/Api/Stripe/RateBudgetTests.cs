namespace Escrow.Tests.Api.Stripe;

/// <summary>
/// Stripe:MaxRequestsPerSecond against a sandbox that answers 429 past its limit, as Stripe does. The sandbox counts
/// arrivals per wall-clock second, so these tests run alone: beside the whole suite, a starved thread pool delivered
/// requests sent over two seconds within one.
/// </summary>
[Collection(Name)]
public sealed class RateBudgetTests
{
    public const string Name = "Stripe rate budget (wall-clock seconds)";

    /// <summary>
    /// An app with a Stripe budget of <paramref name="maxRequestsPerSecond"/> (0: none) against a sandbox limited to 12
    /// requests a second, and a refund breaker that lets a whole burst through.
    /// </summary>
    private static EscrowApiFactory Start(int maxRequestsPerSecond) => new(settings: new Dictionary<string, string?>
    {
        ["Stripe:MaxRequestsPerSecond"] = maxRequestsPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Sandbox:Stripe:RateLimitPerSecond"] = "12",
        ["CircuitBreaker:RefundsPerWindowMax"] = "1000",
        ["CircuitBreaker:RefundAmountPerWindowMaxMinor"] = "100000000",
    });

    /// <summary>A recipient who may receive a whole burst in a day, on the started app.</summary>
    private static async Task<string> BurstRecipientAsync(EscrowApiFactory app)
    {
        _ = app.Server;
        var recipient = LifecycleApp.NewRecipientId();
        await app.PutRecipientAsync(recipient, dailyLimit: 1_000);
        return recipient;
    }

    [Fact]
    public async Task A_burst_of_deadlines_under_a_budget_of_8_per_second_is_all_refunded_without_one_429_from_a_sandbox_limited_to_12()
    {
        const int Escrows = 30;
        await using var app = Start(maxRequestsPerSecond: 8);
        var recipient = await BurstRecipientAsync(app);

        // Created all at once: the budget spaces the PaymentIntents' creation too.
        var escrows = await Task.WhenAll(Enumerable.Range(0, Escrows).Select(_ => app.CreateHeldEscrowAsync(recipient)));
        var ids = escrows.Select(e => e.Id()).ToList();
        app.Clock.Advance(TimeSpan.FromHours(24) + TimeSpan.FromMinutes(16));
        await app.WakeAllAsync(ids);
        foreach (var id in ids)
        {
            await app.WaitForStatusAsync(id, "refunded");
        }

        var stats = await app.CreateClient().GetFromJsonAsync<JsonElement>("/_sandbox/stripe/stats");
        Assert.Equal(0, stats.GetProperty("rateLimited").GetInt64());
        Assert.InRange(stats.GetProperty("maxRequestsInOneSecond").GetInt32(), 1, 12);
        Assert.True(stats.GetProperty("requests").GetInt64() >= 2 * Escrows, stats.ToString());
        Assert.All(escrows, e => Assert.Single(app.SucceededCancels(e.PaymentIntentId())));
    }

    [Fact]
    public async Task Without_a_budget_the_same_burst_meets_the_sandboxs_429s()
    {
        const int Escrows = 30;
        await using var app = Start(maxRequestsPerSecond: 0);
        var recipient = await BurstRecipientAsync(app);

        // Some creates fail or are retried; what matters is that the sandbox refused some requests with 429.
        await Task.WhenAll(Enumerable.Range(0, Escrows).Select(_ => app.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient), Guid.NewGuid().ToString())));

        var stats = await app.CreateClient().GetFromJsonAsync<JsonElement>("/_sandbox/stripe/stats");
        Assert.True(stats.GetProperty("rateLimited").GetInt64() > 0, stats.ToString());
    }
}

[CollectionDefinition(RateBudgetTests.Name, DisableParallelization = true)]
public sealed class RateBudgetCollection;
