namespace Escrow.Tests.Grains;

/// <summary>A breaker of 3 refunds or 5 000 minor units per window, over a storage whose writes the tests hold at a gate.</summary>
public sealed class GatedBreakerFixture() : GatedStorageFixture(refundsPerWindowMax: 3, refundAmountPerWindowMaxMinor: 5_000);

/// <summary>
/// The breaker decides each request at once and answers a permit only once a write that includes it is stored;
/// requests that come while a write is in flight share the next one (group commit). The tests hold the writes at a
/// gate to see what is answered before anything is stored, and fail them to see that nothing unstored was given.
/// </summary>
public sealed class CircuitBreakerGroupCommitTests(GatedBreakerFixture f) : IClassFixture<GatedBreakerFixture>
{
    private ICircuitBreakerGrain Breaker => f.Grains.GetGrain<ICircuitBreakerGrain>(0);

    [Fact]
    public async Task Requests_that_come_while_a_write_is_held_are_decided_at_once_and_their_permits_share_the_next_write()
    {
        await Breaker.ResetAsync("test");
        var tripsBefore = (await Breaker.GetAsync()).Trips;
        var writesBefore = f.Storage.Writes;
        f.Storage.Hold();

        var requests = Enumerable.Range(0, 10).Select(_ => Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(100))).ToArray();

        // Three permits and the trip wait for their writes; the six requests decided after the trip are denied at
        // once, with the writes still held: the decisions did not wait for one another.
        await Eventually.UntilAsync(() => Task.FromResult(requests.Count(r => r.IsCompleted)), n => n == 6, "six requests answered while the writes are held");
        Assert.All(requests.Where(r => r.IsCompleted), r => Assert.Equal(RefundPermit.Denied, r.Result));
        await Eventually.UntilAsync(() => Task.FromResult(f.Storage.Waiting), n => n == 1, "the first write at the gate");
        Assert.Equal(4, requests.Count(r => !r.IsCompleted)); // no permit is answered before it is stored
        var whileHeld = await Breaker.GetAsync(); // answered meanwhile, with what is stored: nothing yet
        Assert.Equal(("closed", 0, tripsBefore), (whileHeld.State, whileHeld.RefundsInWindow, whileHeld.Trips));

        f.Storage.Open();
        var answers = await Task.WhenAll(requests);

        Assert.Equal(3, answers.Count(a => a == RefundPermit.Granted));
        Assert.Equal(7, answers.Count(a => a == RefundPermit.Denied));
        // The held write, then one for everything decided while it was held: two writes for three permits and a trip
        // (one each, one after the other, before group commit).
        Assert.Equal(2, f.Storage.Writes - writesBefore);
        var view = await Breaker.GetAsync();
        Assert.Equal(("open", 3, 300L, tripsBefore + 1), (view.State, view.RefundsInWindow, view.RefundAmountInWindowMinor, view.Trips));
        var alerts = (await f.Store.ListAlertsAsync(false, 1000)).Where(a => a.DedupeKey.StartsWith($"circuit_breaker_tripped/{view.Trips}/", StringComparison.Ordinal));
        Assert.Single(alerts);
    }

    [Fact]
    public async Task When_a_held_write_fails_every_permit_waiting_for_it_fails_and_the_next_activation_counts_only_what_was_stored()
    {
        await Breaker.ResetAsync("test");
        var tripsBefore = (await Breaker.GetAsync()).Trips;
        f.Storage.Hold();

        var requests = Enumerable.Range(0, 5).Select(_ => Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(100))).ToArray();
        // The fifth is denied once three permits and a trip are decided: all four now wait for the held write or the next.
        await Eventually.UntilAsync(() => Task.FromResult(requests.Count(r => r.IsCompleted)), n => n == 1, "the request after the trip denied");
        await Eventually.UntilAsync(() => Task.FromResult(f.Storage.Waiting), n => n == 1, "the first write at the gate");

        f.Storage.FailWaiting();
        foreach (var pending in requests.Where(r => !r.IsCompletedSuccessfully))
        {
            var failure = await Assert.ThrowsAnyAsync<Exception>(() => pending);
            Assert.True(TransientFailure.Is(failure), $"an escrow retries after {failure.GetType().Name}: {failure.Message}");
        }
        f.Storage.Open();

        // Nothing of the failed write was given: a new activation reads the reset window, and three permits are free.
        var management = f.Grains.GetGrain<IManagementGrain>(0);
        await Eventually.UntilAsync(async () => await management.GetActivationAddress(Breaker) is null, "the breaker's activation to go after the failed write");
        var view = await Breaker.GetAsync();
        Assert.Equal(("closed", 0, tripsBefore), (view.State, view.RefundsInWindow, view.Trips));
        Assert.DoesNotContain(await f.Store.ListAlertsAsync(false, 1000), a => a.DedupeKey.StartsWith($"circuit_breaker_tripped/{tripsBefore + 1}/", StringComparison.Ordinal));
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(RefundPermit.Granted, await Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(100)));
        }
        Assert.Equal(RefundPermit.Denied, await Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(100)));
    }
}
