using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Escrow.Tests.Console;

/// <summary>The sender's status page in chromium: the token comes from the URL fragment and opens only its escrow.</summary>
[Collection(ConsoleBrowserCollection.Name)]
public sealed class SenderPageTests(ConsoleBrowserFixture fx)
{
    [Fact]
    public async Task The_senders_page_opened_from_the_receipt_email_shows_held_then_released_after_the_reply()
    {
        var (id, token) = await fx.HeldEscrowAsync();
        var receipt = await Eventually.UntilAsync(
            () => Task.FromResult(fx.App.Postmark.Outbox.FirstOrDefault(m => m.Tag == "payment-receipt" && m.Metadata.GetValueOrDefault("escrow_id") == id.ToString("D"))),
            m => m is not null, "the receipt e-mail");
        var link = Regex.Match(receipt!.TextBody!, @"http\S+/e/\S+").Value;
        Assert.Equal($"{fx.BaseUrl}/e/{id:D}#t={token}", link);
        var context = await fx.NewContextAsync(width: 390, height: 844);
        var page = await context.NewPageAsync();
        var requests = new List<string>();
        page.Request += (_, r) => requests.Add(r.Url);

        await page.GotoAsync(link);

        await Assertions.Expect(page.Locator("#status")).ToHaveTextAsync("held");
        await Assertions.Expect(page.Locator("#explanation")).ToContainTextAsync("held on your card, not taken");
        await Assertions.Expect(page.Locator("#amount")).ToHaveTextAsync("15.00 EUR");
        await Assertions.Expect(page.Locator("#recipient")).ToHaveTextAsync("Alice");
        await Assertions.Expect(page.Locator("#time-left")).ToContainTextAsync("min left");
        await Assertions.Expect(page.Locator("#next")).ToContainTextAsync("If Alice replies before the deadline");
        await Assertions.Expect(page.Locator("main")).Not.ToContainTextAsync("alice@example.com");
        // The token stays in the fragment: no request carries it in its address.
        Assert.DoesNotContain(requests, u => u.Contains(token, StringComparison.Ordinal));
        await ConsoleBrowserFixture.ScreenshotAsync(page, "sender-held");

        var reply = await fx.App.Platform().PostAsJsonAsync($"/v1/escrows/{id}/response", new { text = "Here is my answer." });
        reply.EnsureSuccessStatusCode();
        await fx.App.WaitForStatusAsync(id, "released");
        await page.ReloadAsync();

        await Assertions.Expect(page.Locator("#status")).ToHaveTextAsync("released");
        await Assertions.Expect(page.Locator("#explanation")).ToContainTextAsync("Alice replied");
        await ConsoleBrowserFixture.ScreenshotAsync(page, "sender-released");
    }

    [Theory]
    [InlineData("#t=wrong-token")]
    [InlineData("")]
    [InlineData("#t=")]
    public async Task A_wrong_or_missing_token_shows_a_page_that_says_so_and_nothing_about_the_escrow(string fragment)
    {
        var (id, _) = await fx.HeldEscrowAsync();
        var context = await fx.NewContextAsync();
        var page = await context.NewPageAsync();

        await page.GotoAsync($"/e/{id}{fragment}");

        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "This link does not work" })).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#escrow")).ToBeHiddenAsync();
        var text = await page.Locator("body").InnerTextAsync();
        foreach (var secret in new[] { "held", "15.00", "Alice", "EUR", id.ToString() })
        {
            Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
        }
        Assert.DoesNotContain("Alice", await page.ContentAsync(), StringComparison.Ordinal);
        if (fragment == "#t=wrong-token")
        {
            await ConsoleBrowserFixture.ScreenshotAsync(page, "sender-refused");
        }
    }
}
