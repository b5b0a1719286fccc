namespace Escrow.Tests.Hosting;

/// <summary>
/// The reminder service's clock: timers in one queue behind one timer of the underlying clock. The underlying clock is
/// a fake one here, so what is due is decided by <see cref="FakeTimeProvider.Advance"/>; the queue is drained inside
/// Advance (the fake clock runs its timer's callback there), so <see cref="CoalescingTimeProvider.QueuedEntries"/> is
/// exact when Advance returns, while the callbacks themselves run on the thread pool and are awaited.
/// </summary>
public sealed class CoalescingTimeProviderTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 28, 9, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task A_timer_fires_once_at_its_due_time_and_not_before()
    {
        using var provider = new CoalescingTimeProvider(_clock);
        var fired = new Counter();
        using var timer = provider.CreateTimer(fired.Callback, "x", TimeSpan.FromSeconds(5), Timeout.InfiniteTimeSpan);

        AdvanceThenCount(provider, TimeSpan.FromSeconds(5) - TimeSpan.FromMilliseconds(2), queued: 1, dispatched: 0);

        _clock.Advance(TimeSpan.FromMilliseconds(2));
        Assert.Equal(0, provider.QueuedEntries);
        await fired.AtLeastAsync(1);
        Assert.Equal("x", fired.LastState);

        AdvanceThenCount(provider, TimeSpan.FromMinutes(5), queued: 0, dispatched: 1);
        Assert.Equal(1, fired.Count);
    }

    [Fact]
    public async Task Timers_fire_in_the_order_of_their_due_times_whatever_the_order_they_were_made_in()
    {
        using var provider = new CoalescingTimeProvider(_clock);
        var order = new List<int>();
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var dueSeconds = new[] { 9, 2, 7, 1, 5 };
        var timers = dueSeconds.Select(s => provider.CreateTimer(_ =>
        {
            lock (order)
            {
                order.Add(s);
                if (order.Count == dueSeconds.Length)
                {
                    all.SetResult();
                }
            }
        }, null, TimeSpan.FromSeconds(s), Timeout.InfiniteTimeSpan)).ToList();

        for (var second = 1; second <= 9; second++)
        {
            _clock.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(dueSeconds.Count(s => s > second), provider.QueuedEntries);
            await Eventually.UntilAsync(() => Task.FromResult(Fired() == dueSeconds.Count(s => s <= second)), $"the timers due by {second} s");
        }
        await all.Task.WaitAsync(Wait);
        Assert.Equal([1, 2, 5, 7, 9], order);
        timers.ForEach(t => t.Dispose());

        int Fired()
        {
            lock (order)
            {
                return order.Count;
            }
        }
    }

    [Fact]
    public async Task A_changed_timer_fires_at_its_new_time_only_and_its_old_entry_goes_when_it_comes_up()
    {
        using var provider = new CoalescingTimeProvider(_clock);
        var fired = new Counter();
        using var timer = provider.CreateTimer(fired.Callback, null, TimeSpan.FromSeconds(10), Timeout.InfiniteTimeSpan);

        Assert.True(timer.Change(TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan));
        Assert.Equal(2, provider.QueuedEntries); // the live entry, and the stale one due at 10 s

        _clock.Advance(TimeSpan.FromSeconds(1));
        await fired.AtLeastAsync(1);
        Assert.Equal(1, provider.QueuedEntries);

        AdvanceThenCount(provider, TimeSpan.FromSeconds(9), queued: 0, dispatched: 1);
    }

    [Fact]
    public void A_timer_changed_to_infinite_or_disposed_never_fires_and_a_disposed_one_cannot_be_changed()
    {
        using var provider = new CoalescingTimeProvider(_clock);
        var fired = new Counter();
        using var stopped = provider.CreateTimer(fired.Callback, null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
        var disposed = provider.CreateTimer(fired.Callback, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));

        Assert.True(stopped.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan));
        disposed.Dispose();
        Assert.False(disposed.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan));

        // Both stale entries come up at 1 s and are dropped there without a callback handed to the thread pool.
        AdvanceThenCount(provider, TimeSpan.FromSeconds(3), queued: 0, dispatched: 0);
    }

    [Fact]
    public async Task A_periodic_timer_fires_every_period_until_disposed()
    {
        using var provider = new CoalescingTimeProvider(_clock);
        var fired = new Counter();
        var timer = provider.CreateTimer(fired.Callback, null, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1));

        _clock.Advance(TimeSpan.FromSeconds(2));
        await fired.AtLeastAsync(1);
        _clock.Advance(TimeSpan.FromSeconds(1));
        await fired.AtLeastAsync(2);
        _clock.Advance(TimeSpan.FromSeconds(1));
        await fired.AtLeastAsync(3);
        Assert.Equal(1, provider.QueuedEntries);

        await timer.DisposeAsync();
        AdvanceThenCount(provider, TimeSpan.FromSeconds(5), queued: 0, dispatched: 3);
    }

    [Fact]
    public async Task A_timed_wait_on_it_ends_at_its_due_time_and_a_cancelled_one_at_once()
    {
        using var provider = new CoalescingTimeProvider(_clock);
        var timed = WaitOn(provider, TimeSpan.FromMinutes(10));
        using var cts = new CancellationTokenSource();
        var cancelled = WaitOn(provider, TimeSpan.FromMinutes(10), cts.Token);

        _clock.Advance(TimeSpan.FromMinutes(10) - TimeSpan.FromMilliseconds(2));
        Assert.False(timed.IsCompleted);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Wait));
        Assert.False(timed.IsCompleted);

        _clock.Advance(TimeSpan.FromMilliseconds(2));
        await EndedByItsTimeAsync(timed);
        Assert.Equal(0, provider.QueuedEntries);
    }

    [Fact]
    public async Task Cancelled_waits_do_not_pile_up_the_queue_is_compacted_once_they_outnumber_the_live_ones()
    {
        using var provider = new CoalescingTimeProvider(_clock);
        using var cts = new CancellationTokenSource();
        var waits = Enumerable.Range(0, 3000).Select(i => WaitOn(provider, TimeSpan.FromHours(1) + TimeSpan.FromSeconds(i), cts.Token)).ToList();
        var live = Enumerable.Range(0, 100).Select(i => WaitOn(provider, TimeSpan.FromHours(2) + TimeSpan.FromSeconds(i))).ToList();
        var fired = new Counter();
        using var soon = provider.CreateTimer(fired.Callback, null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
        Assert.Equal(3101, provider.QueuedEntries);

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Task.WhenAll(waits).WaitAsync(Wait));
        Assert.Equal(3101, provider.QueuedEntries); // stale until they come up or the queue is compacted

        _clock.Advance(TimeSpan.FromSeconds(1)); // a wake-up: it finds 3000 stale entries and 100 live ones
        await fired.AtLeastAsync(1);
        Assert.Equal(100, provider.QueuedEntries);

        _clock.Advance(TimeSpan.FromHours(2) + TimeSpan.FromSeconds(100));
        foreach (var wait in live)
        {
            await EndedByItsTimeAsync(wait);
        }
        Assert.Equal(0, provider.QueuedEntries);
    }

    [Fact]
    public async Task A_callback_runs_in_the_execution_context_of_the_timer_s_creation()
    {
        using var provider = new CoalescingTimeProvider(_clock);
        var local = new AsyncLocal<string>();
        var seen = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        local.Value = "created here";
        using var timer = provider.CreateTimer(_ => seen.TrySetResult(local.Value), null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
        local.Value = "changed later";

        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("created here", await seen.Task.WaitAsync(Wait));
    }

    [Fact]
    public void Due_times_and_periods_out_of_range_are_refused_as_system_timers_refuse_them()
    {
        using var provider = new CoalescingTimeProvider(_clock);
        Assert.Throws<ArgumentOutOfRangeException>(() => provider.CreateTimer(_ => { }, null, TimeSpan.FromMilliseconds(-2), Timeout.InfiniteTimeSpan));
        Assert.Throws<ArgumentOutOfRangeException>(() => provider.CreateTimer(_ => { }, null, TimeSpan.Zero, TimeSpan.FromDays(60)));
        Assert.Equal(0, provider.QueuedEntries);
    }

    /// <summary>Advances the clock by <paramref name="by"/>, then checks the entries still queued and the callbacks dispatched so far.</summary>
    private void AdvanceThenCount(CoalescingTimeProvider provider, TimeSpan by, int queued, int dispatched)
    {
        _clock.Advance(by);
        Assert.Equal(queued, provider.QueuedEntries);
        Assert.Equal(dispatched, provider.DispatchedCallbacks);
    }

    /// <summary>
    /// A wait on the provider's clock, as the reminder service waits for a reminder: a timed wait on a task that never
    /// completes, so it ends only when its timer fires (a <see cref="TimeoutException"/>) or its token is cancelled
    /// (the timer is disposed).
    /// </summary>
    private static Task WaitOn(TimeProvider clock, TimeSpan due, CancellationToken token = default) =>
        new TaskCompletionSource().Task.WaitAsync(due, clock, token);

    /// <summary>Awaits a wait of <see cref="WaitOn"/> and checks that its timer, not its token or the test's bound, ended it.</summary>
    private static async Task EndedByItsTimeAsync(Task wait)
    {
        await Eventually.UntilAsync(() => Task.FromResult(wait.IsCompleted), "the wait to end at its due time");
        Assert.IsType<TimeoutException>(wait.Exception?.InnerException);
    }

    private sealed class Counter
    {
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public object? LastState { get; private set; }

        public void Callback(object? state)
        {
            LastState = state;
            Interlocked.Increment(ref _count);
        }

        public Task AtLeastAsync(int n) =>
            Eventually.UntilAsync(() => Task.FromResult(Count >= n), $"{n} callback(s)");
    }
}
