namespace Escrow.Silo;

/// <summary>
/// A <see cref="TimeProvider"/> whose timers wait in one priority queue behind a single timer of the underlying clock.
/// </summary>
/// <remarks>
/// <para>
/// Orleans' reminder service keeps a wait per reminder it holds in memory (every reminder of its range due within
/// <c>ReminderOptions.ReminderLoadingWindow</c>), each a timer of its keyed <see cref="TimeProvider"/>. On
/// <see cref="TimeProvider.System"/> those are .NET timer-queue entries, and the runtime walks its whole list of long
/// timers several times a second whenever any timer fires: 100 000 waits ten to twenty minutes out cost ~6 % of a
/// core on these machines while nothing is due (<c>dotnet run -c Release --project Escrow.Benchmarks -- timers</c>;
/// docs/BENCHMARKS.md). Here a wait costs a heap entry, and only the earliest is known to the
/// underlying clock.
/// </para>
/// <para>
/// Semantics follow <see cref="System.Threading.Timer"/>: a callback runs on the thread pool, in the execution
/// context captured when the timer was created (unless its flow was suppressed), no earlier than its due time; a
/// period of zero or <see cref="Timeout.InfiniteTimeSpan"/> fires once; a callback already handed to the thread pool
/// may still run after <see cref="ITimer.Change"/> or <see cref="IDisposable.Dispose"/>. A changed or disposed
/// timer's old entry stays in the queue until it comes up or the queue is compacted (when such entries outnumber
/// the live ones), so a cancelled wait costs memory for at most its original due time.
/// </para>
/// </remarks>
public sealed class CoalescingTimeProvider : TimeProvider, IDisposable
{
    private const int CompactAbove = 1024;
    private static readonly TimeSpan MaxDue = TimeSpan.FromMilliseconds(uint.MaxValue - 1d);

    private readonly TimeProvider _clock;
    private readonly Lock _gate = new();
    private readonly PriorityQueue<Entry, long> _queue = new();
    private readonly ITimer _wakeUp;
    private readonly long _tolerance;
    private long _armedFor = long.MaxValue;
    private int _stale;
    private long _dispatched;
    private bool _disposed;

    /// <param name="clock">The clock read for the time and whose one timer wakes the queue (the system clock in the service).</param>
    public CoalescingTimeProvider(TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(clock);
        _clock = clock;
        // The clock's timers count whole milliseconds: an entry due within one of a wake-up is due.
        _tolerance = clock.TimestampFrequency / 1000;
        // The one timer belongs to the provider, not to whoever happened to create it: no execution context.
        var suppressed = ExecutionContext.IsFlowSuppressed() ? (AsyncFlowControl?)null : ExecutionContext.SuppressFlow();
        try
        {
            _wakeUp = clock.CreateTimer(static s => ((CoalescingTimeProvider)s!).WakeUp(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
        finally
        {
            suppressed?.Undo();
        }
    }

    public override DateTimeOffset GetUtcNow() => _clock.GetUtcNow();

    public override long GetTimestamp() => _clock.GetTimestamp();

    public override long TimestampFrequency => _clock.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => _clock.LocalTimeZone;

    /// <summary>Entries in the queue, live and stale: what the timers cost in memory.</summary>
    public int QueuedEntries
    {
        get
        {
            lock (_gate)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>Callbacks handed to the thread pool so far.</summary>
    public long DispatchedCallbacks => Interlocked.Read(ref _dispatched);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new SharedTimer(this, callback, state, ExecutionContext.Capture());
        Change(timer, dueTime, period);
        return timer;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _queue.Clear();
            _stale = 0;
        }
        _wakeUp.Dispose();
    }

    private bool Change(SharedTimer timer, TimeSpan dueTime, TimeSpan period)
    {
        Check(dueTime, nameof(dueTime));
        Check(period, nameof(period));
        lock (_gate)
        {
            if (timer.Disposed || _disposed)
            {
                return false;
            }
            Forget(timer);
            timer.Version++;
            timer.Period = period > TimeSpan.Zero ? period : Timeout.InfiniteTimeSpan;
            if (dueTime != Timeout.InfiniteTimeSpan)
            {
                Enqueue(timer, _clock.GetTimestamp() + Ticks(dueTime));
                Arm();
            }
            return true;
        }
    }

    private void Remove(SharedTimer timer)
    {
        lock (_gate)
        {
            if (timer.Disposed)
            {
                return;
            }
            Forget(timer);
            timer.Disposed = true;
            timer.Release();
        }
    }

    /// <summary>The timer's queued entry, if any, is stale from now on.</summary>
    private void Forget(SharedTimer timer)
    {
        if (timer.Queued)
        {
            timer.Queued = false;
            _stale++;
        }
    }

    private void Enqueue(SharedTimer timer, long at)
    {
        _queue.Enqueue(new Entry(timer, timer.Version), at);
        timer.Queued = true;
    }

    /// <summary>Sets the clock's one timer for the earliest entry, unless it is already set for that time or earlier.</summary>
    private void Arm()
    {
        if (_disposed || !_queue.TryPeek(out _, out var at) || at >= _armedFor)
        {
            return;
        }
        _armedFor = at;
        var delay = _clock.GetElapsedTime(_clock.GetTimestamp(), at);
        // Rounded up to the clock's millisecond, so that it does not wake just before the entry is due.
        var ms = Math.Ceiling(Math.Max(0, delay.TotalMilliseconds));
        _wakeUp.Change(TimeSpan.FromMilliseconds(Math.Min(ms, MaxDue.TotalMilliseconds)), Timeout.InfiniteTimeSpan);
    }

    private void WakeUp()
    {
        List<SharedTimer>? due = null;
        lock (_gate)
        {
            _armedFor = long.MaxValue;
            var now = _clock.GetTimestamp();
            while (_queue.TryPeek(out var entry, out var at) && at <= now + _tolerance)
            {
                _queue.Dequeue();
                var timer = entry.Timer;
                if (entry.Version != timer.Version || timer.Disposed)
                {
                    _stale--;
                    continue;
                }
                timer.Queued = false;
                (due ??= []).Add(timer);
                Interlocked.Increment(ref _dispatched);
            }
            if (due is not null)
            {
                foreach (var timer in due)
                {
                    if (timer.Period != Timeout.InfiniteTimeSpan)
                    {
                        Enqueue(timer, now + Ticks(timer.Period));
                    }
                }
            }
            if (_stale > CompactAbove && _stale > _queue.Count - _stale)
            {
                Compact();
            }
            Arm();
        }
        if (due is not null)
        {
            foreach (var timer in due)
            {
                ThreadPool.UnsafeQueueUserWorkItem(timer, preferLocal: false);
            }
        }
    }

    /// <summary>Drops the stale entries: rebuilds the queue from the live ones.</summary>
    private void Compact()
    {
        var live = new List<(Entry, long)>(_queue.Count - _stale);
        foreach (var (entry, at) in _queue.UnorderedItems)
        {
            if (entry.Version == entry.Timer.Version && !entry.Timer.Disposed)
            {
                live.Add((entry, at));
            }
        }
        _queue.Clear();
        _queue.EnqueueRange(live);
        _stale = 0;
    }

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _clock.TimestampFrequency);

    private static void Check(TimeSpan span, string name)
    {
        if ((span < TimeSpan.Zero && span != Timeout.InfiniteTimeSpan) || span > MaxDue)
        {
            throw new ArgumentOutOfRangeException(name, span, "A timer's due time and period are 0 to 4294967294 ms, or Timeout.InfiniteTimeSpan.");
        }
    }

    private readonly record struct Entry(SharedTimer Timer, long Version);

    private sealed class SharedTimer(CoalescingTimeProvider owner, TimerCallback callback, object? state, ExecutionContext? context)
        : ITimer, IThreadPoolWorkItem
    {
        private TimerCallback? _callback = callback;
        private object? _state = state;
        private ExecutionContext? _context = context;

        // Guarded by the owner's lock.
        internal long Version;
        internal TimeSpan Period;
        internal bool Queued;
        internal bool Disposed;

        public bool Change(TimeSpan dueTime, TimeSpan period) => owner.Change(this, dueTime, period);

        public void Dispose() => owner.Remove(this);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }

        /// <summary>What a disposed timer no longer needs: its stale entry may outlive it in the queue.</summary>
        internal void Release()
        {
            _callback = null;
            _state = null;
            _context = null;
        }

        void IThreadPoolWorkItem.Execute()
        {
            var callback = _callback;
            var state = _state;
            var context = _context;
            if (callback is null)
            {
                return;
            }
            if (context is null)
            {
                callback(state);
            }
            else
            {
                ExecutionContext.Run(context, static s =>
                {
                    var (cb, st) = ((TimerCallback, object?))s!;
                    cb(st);
                }, (callback, state));
            }
        }
    }
}
