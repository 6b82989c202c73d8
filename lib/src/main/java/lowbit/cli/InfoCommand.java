package lowbit.cli;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import lowbit.checkpoint.Checkpoint;
import lowbit.cuda.Device;
import lowbit.io.TensorInfo;
import lowbit.results.Backend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "info", mixinStandardHelpOptions = true, description = "A checkpoint's config, tensors and hash, and the backend (--device, --weights) it would run on.")
final class InfoCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--tensors", description = "list every tensor")
    boolean tensors;

    @Override
    public Integer call() {
        Backend b = modelOptions.backend(); // first: --device cuda without a GPU is one line, not half a listing
        try (Checkpoint ckpt = modelOptions.open()) {
            System.out.println("source:  " + ckpt.source());
            System.out.println("sha256:  " + ckpt.sha256());
            System.out.println("config:  " + ckpt.config());
            long params = 0;
            Map<String, Long> byType = new TreeMap<>();
            for (TensorInfo t : ckpt.tensors().values()) {
                params += t.elements();
                byType.merge(t.dtype(), t.elements(), Long::sum);
            }
            System.out.printf("tensors: %d, %,d parameters, by storage type %s%n", ckpt.tensors().size(), params, byType);
            System.out.println("memory:  " + lowbit.memory.MemoryEstimate.of("load", ckpt.config(), null, 0, modelOptions.weights()).describe()
                    + " to load with --weights " + modelOptions.weights().label());
            if (tensors) ckpt.tensors().values().forEach(t -> System.out.println("  " + t));
            System.out.println("backend: " + b.text() + (b.device() == Device.CPU ? " (" + b.description() + ")" : ""));
        }
        return 0;
    }
}
