using Escrow.Api.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace Escrow.Tests.Api.Contract;

/// <summary>A cluster or database failure mid-request answers 503 with Retry-After, never a 500; other exceptions are left alone.</summary>
public sealed class TransientFailureTests
{
    [Theory]
    [InlineData("orleans", true)]
    [InlineData("timeout", true)]
    [InlineData("npgsql", true)]
    [InlineData("aggregate-timeout", true)]
    [InlineData("invalid-operation", false)]
    [InlineData("null-reference", false)]
    public async Task Transient_failures_answer_503_with_retry_after_and_a_problem_detail(string kind, bool transient)
    {
        Exception exception = kind switch
        {
            "orleans" => new OrleansException("silo went away"),
            "timeout" => new TimeoutException("response did not arrive on time"),
            "npgsql" => new Npgsql.NpgsqlException("connection lost"),
            "aggregate-timeout" => new AggregateException(new TimeoutException("late")),
            "invalid-operation" => new InvalidOperationException("a bug"),
            _ => new NullReferenceException(),
        };
        var services = new ServiceCollection().AddLogging().AddProblemDetails().BuildServiceProvider();
        var handler = new TransientFailureHandler(services.GetRequiredService<IProblemDetailsService>(), NullLogger<TransientFailureHandler>.Instance);
        var context = new DefaultHttpContext { RequestServices = services };
        context.Request.Method = "POST";
        context.Request.Path = "/v1/escrows";
        context.Request.Headers.Accept = "application/json";
        var body = new MemoryStream();
        context.Response.Body = body;

        var handled = await handler.TryHandleAsync(context, exception, CancellationToken.None);

        Assert.Equal(transient, handled);
        Assert.Equal(transient, Escrow.Grains.TransientFailure.Is(exception));
        if (transient)
        {
            Assert.Equal(StatusCodes.Status503ServiceUnavailable, context.Response.StatusCode);
            Assert.Equal("2", context.Response.Headers.RetryAfter.ToString());
            using var problem = JsonDocument.Parse(body.ToArray());
            Assert.Equal(503, problem.RootElement.GetProperty("status").GetInt32());
            Assert.Contains("Retry the same request", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }
        else
        {
            Assert.Equal(0, body.Length);
        }
    }
}
