namespace Escrow.Grains.Storage;

/// <summary>
/// Group commit: items that arrive while a group is being written wait and are written together in the next one.
/// Alone, an item is written at once; under load, many share one transaction (one WAL flush). Each caller's task
/// completes only after its item is committed. A failed group is retried item by item, so one bad item fails alone.
/// </summary>
public sealed class GroupCommitter<T>(Func<IReadOnlyList<T>, CancellationToken, Task> writeGroup, int groupItemsMax = 256)
{
    private readonly Lock _lock = new();
    private readonly Queue<(T Item, TaskCompletionSource Done)> _pending = new();
    private bool _writing;

    public Task WriteAsync(T item, CancellationToken cancellationToken = default)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool start;
        lock (_lock)
        {
            _pending.Enqueue((item, done));
            start = !_writing;
            _writing = true;
        }
        if (start)
        {
            // The writer runs on the thread pool, outside any grain's scheduler; callers await their own item.
            _ = Task.Run(DrainAsync, CancellationToken.None);
        }
        return done.Task.WaitAsync(cancellationToken);
    }

    private async Task DrainAsync()
    {
        while (true)
        {
            var group = new List<(T Item, TaskCompletionSource Done)>();
            lock (_lock)
            {
                while (group.Count < groupItemsMax && _pending.TryDequeue(out var next))
                {
                    group.Add(next);
                }
                if (group.Count == 0)
                {
                    _writing = false;
                    return;
                }
            }
            await WriteGroupAsync(group);
        }
    }

    private async Task WriteGroupAsync(List<(T Item, TaskCompletionSource Done)> group)
    {
        try
        {
            await writeGroup(group.ConvertAll(g => g.Item), CancellationToken.None);
            group.ForEach(g => g.Done.TrySetResult());
            return;
        }
        catch (Exception e) when (group.Count == 1)
        {
            group[0].Done.TrySetException(e);
            return;
        }
        catch (Exception)
        {
            // Fall through: find the item that failed by writing each on its own.
        }
        foreach (var (item, done) in group)
        {
            try
            {
                await writeGroup([item], CancellationToken.None);
                done.TrySetResult();
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        }
    }
}
