using Orleans.Storage;

namespace Escrow.Tests.Grains;

/// <summary>A test cluster whose grain state goes to a <see cref="GatedGrainStorage"/>.</summary>
public class GatedStorageFixture : GrainClusterFixture
{
    public GatedStorageFixture()
        : this(1_000, 10_000_000)
    {
    }

    protected GatedStorageFixture(int refundsPerWindowMax, long refundAmountPerWindowMaxMinor)
        : base(refundsPerWindowMax, refundAmountPerWindowMaxMinor, new GatedGrainStorage())
    {
    }

    public GatedGrainStorage Storage => (GatedGrainStorage)Cluster.Silos[0].ServiceProvider
        .GetRequiredKeyedService<IGrainStorage>(EscrowStorage.ProviderName);
}

/// <summary>
/// In-memory grain storage whose writes a test can hold at a gate, then let through or fail: what a slow or broken
/// database does to a grain that is waiting for its write. Keeps the ETag rule of the ADO.NET provider and counts the
/// reads and the writes that reached it.
/// </summary>
public sealed class GatedGrainStorage : IGrainStorage
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, (object State, string ETag)> _rows = new(StringComparer.Ordinal);
    private readonly List<TaskCompletionSource<bool>> _waiting = [];
    private bool _holding;
    private long _etag;
    private readonly Dictionary<GrainId, int> _writesTo = [];
    private readonly Dictionary<GrainId, int> _readsOf = [];
    private int _writes;

    /// <summary>Writes that reached the storage (stored, failed, or waiting at the gate).</summary>
    public int Writes => Volatile.Read(ref _writes);

    /// <summary>Writes of one grain that reached the storage.</summary>
    public int WritesTo(GrainId grainId)
    {
        lock (_lock)
        {
            return _writesTo.GetValueOrDefault(grainId);
        }
    }

    /// <summary>Reads of one grain's state.</summary>
    public int ReadsOf(GrainId grainId)
    {
        lock (_lock)
        {
            return _readsOf.GetValueOrDefault(grainId);
        }
    }

    /// <summary>What is stored for one grain's state (default when nothing is).</summary>
    public T? Stored<T>(string stateName, GrainId grainId)
    {
        lock (_lock)
        {
            return _rows.TryGetValue(Key(stateName, grainId), out var row) ? (T)row.State : default;
        }
    }

    /// <summary>Writes waiting at the gate.</summary>
    public int Waiting
    {
        get
        {
            lock (_lock)
            {
                return _waiting.Count;
            }
        }
    }

    /// <summary>From now on, writes wait until <see cref="Open"/> or <see cref="FailWaiting"/>.</summary>
    public void Hold()
    {
        lock (_lock)
        {
            _holding = true;
        }
    }

    /// <summary>Lets the waiting writes and every later one through.</summary>
    public void Open() => Release(store: true, holdOn: false);

    /// <summary>Fails the writes waiting at the gate (nothing of them is stored); later writes keep waiting.</summary>
    public void FailWaiting() => Release(store: false, holdOn: true);

    private void Release(bool store, bool holdOn)
    {
        List<TaskCompletionSource<bool>> waiting;
        lock (_lock)
        {
            _holding = holdOn;
            waiting = [.. _waiting];
            _waiting.Clear();
        }
        waiting.ForEach(w => w.TrySetResult(store));
    }

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        lock (_lock)
        {
            _readsOf[grainId] = _readsOf.GetValueOrDefault(grainId) + 1;
            if (_rows.TryGetValue(Key(stateName, grainId), out var row))
            {
                grainState.State = (T)row.State;
                grainState.ETag = row.ETag;
                grainState.RecordExists = true;
            }
        }
        return Task.CompletedTask;
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        Interlocked.Increment(ref _writes);
        var state = grainState.State!; // what the grain asked to write, as of the call
        var etagSent = grainState.ETag;
        Task<bool>? gate = null;
        lock (_lock)
        {
            _writesTo[grainId] = _writesTo.GetValueOrDefault(grainId) + 1;
            if (_holding)
            {
                var waiter = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiting.Add(waiter);
                gate = waiter.Task;
            }
        }
        if (gate is not null && !await gate)
        {
            throw new NpgsqlException("test: the grain state write failed at the gate");
        }
        var key = Key(stateName, grainId);
        string etag;
        lock (_lock)
        {
            var stored = _rows.TryGetValue(key, out var row) ? row.ETag : null;
            if (stored != etagSent)
            {
                throw new InconsistentStateException($"ETag mismatch on {key}", stored, etagSent);
            }
            etag = (++_etag).ToString(System.Globalization.CultureInfo.InvariantCulture);
            _rows[key] = (state, etag);
        }
        grainState.ETag = etag;
        grainState.RecordExists = true;
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        lock (_lock)
        {
            _rows.Remove(Key(stateName, grainId));
        }
        grainState.ETag = null;
        grainState.RecordExists = false;
        return Task.CompletedTask;
    }

    private static string Key(string stateName, GrainId grainId) => stateName + "/" + grainId;
}
