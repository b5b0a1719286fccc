namespace Escrow.Sandbox;

/// <summary>
/// An emulator's table of objects by id, in insertion order, whose every change is recorded in the
/// <see cref="SandboxJournal"/> when there is one. Used under the emulator's lock, like the dictionary it wraps.
/// </summary>
internal sealed class PersistentMap<T>(string kind, SandboxJournal? journal, IEqualityComparer<string>? comparer = null)
    where T : notnull
{
    private readonly OrderedDictionary<string, T> _items = new(comparer ?? StringComparer.Ordinal);

    public string Kind { get; } = kind;

    public T this[string id]
    {
        get => _items[id];
        set
        {
            _items[id] = value;
            journal?.Put(Kind, id, value);
        }
    }

    public int Count => _items.Count;

    public IEnumerable<T> Values => _items.Values;

    public IEnumerable<string> Keys => _items.Keys;

    public bool TryGetValue(string id, out T value) => _items.TryGetValue(id, out value!);

    public bool ContainsKey(string id) => _items.ContainsKey(id);

    public T? GetValueOrDefault(string id) => _items.TryGetValue(id, out var value) ? value : default;

    public bool Remove(string id)
    {
        if (!_items.Remove(id))
        {
            return false;
        }

        journal?.Delete(Kind, id);
        return true;
    }

    public void Clear()
    {
        _items.Clear();
        journal?.Clear(Kind);
    }

    /// <summary>Fills the table from the journal's stored rows (nothing is recorded: they are stored already).</summary>
    public void Load()
    {
        if (journal is null)
        {
            return;
        }

        foreach (var (_, id, body) in journal.Load(Kind))
        {
            _items[id] = SandboxJournal.Deserialize<T>(body);
        }
    }
}
