using System.Collections.Concurrent;

namespace Escrow.Tests.Sql;

public sealed class GroupCommitterTests
{
    [Fact]
    public async Task Items_arriving_while_a_group_commits_share_the_next_commit_and_each_caller_waits_for_its_own()
    {
        var firstStarted = new TaskCompletionSource();
        var releaseFirst = new TaskCompletionSource();
        var groups = new ConcurrentQueue<IReadOnlyList<int>>();
        var committer = new GroupCommitter<int>(async (items, _) =>
        {
            groups.Enqueue(items);
            if (items.Contains(0))
            {
                firstStarted.SetResult();
                await releaseFirst.Task;
            }
        });

        var first = committer.WriteAsync(0);
        await firstStarted.Task;
        var waiting = Enumerable.Range(1, 10).Select(i => committer.WriteAsync(i)).ToList();
        Assert.All(waiting, t => Assert.False(t.IsCompleted));
        releaseFirst.SetResult();
        await Task.WhenAll(waiting.Append(first));

        Assert.Equal(2, groups.Count);
        Assert.Equal(Enumerable.Range(1, 10), groups.Last());
    }

    [Fact]
    public async Task A_failing_item_fails_alone_and_the_rest_of_its_group_is_committed()
    {
        var gate = new TaskCompletionSource();
        var committed = new ConcurrentBag<int>();
        var committer = new GroupCommitter<int>(async (items, _) =>
        {
            if (items.Contains(0))
            {
                await gate.Task;
            }
            if (items.Contains(13))
            {
                throw new InvalidOperationException("bad row");
            }
            foreach (var item in items)
            {
                committed.Add(item);
            }
        });

        var first = committer.WriteAsync(0);
        var group = new[] { 12, 13, 14 }.Select(i => committer.WriteAsync(i)).ToList();
        gate.SetResult();
        await first;

        await group[0];
        await group[2];
        await Assert.ThrowsAsync<InvalidOperationException>(() => group[1]);
        Assert.Equal([0, 12, 14], committed.Order());
    }
}
